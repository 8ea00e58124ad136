"""One JSON Schema per body (simulator/schemas.py): strict reading, today's error codes, and the scenario
schema holding the same switches, network rules, registers and fault names."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from iemdcr_twin.simulator import schemas
from iemdcr_twin.simulator.model.faults import CATALOGUE
from iemdcr_twin.simulator.model.profiles import SWITCH_NAMES, Switches
from iemdcr_twin.simulator.scenario.loader import schema as scenario_schema

BODIES = schemas.CONTROL_BODIES


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def test_the_scenario_schema_holds_the_same_switches_rules_registers_and_faults() -> None:
    """scenario/schema.json is published as one file for editors, so it repeats these; here they are held equal
    to the one place they are written."""
    scenario = scenario_schema()
    steps = scenario["$defs"]["step"]["properties"]
    switches = schemas.public(schemas.SWITCH_PROPERTIES)
    assert set(switches) == set(SWITCH_NAMES) == set(Switches().as_dict())
    assert {k: v for k, v in scenario["properties"]["meter"]["properties"].items() if k in switches} == switches
    assert steps["profile"]["properties"] == switches
    network = steps["fault"]["properties"]["network"]["anyOf"][1]
    assert network["items"] == schemas.public(schemas.NETWORK_RULE)
    assert network["maxItems"] == schemas.MAX_RULES
    assert steps["fault"]["properties"]["seed"] == schemas.public(schemas.NETWORK_RULES["properties"]["seed"])
    names = [fault.name for fault in CATALOGUE]
    assert steps["fault"]["properties"]["raise"]["enum"] == names == list(schemas.FAULT_NAMES)
    assert steps["fault"]["properties"]["clear"]["enum"] == [*names, "all"]
    for key, rule in steps["registers"]["properties"].items():
        control = BODIES["Registers"]["properties"][key]
        assert (rule["minimum"], rule["maximum"]) == (control["minimum"], control["maximum"])


def all_schemas() -> Iterator[tuple[str, Any]]:
    yield from BODIES.items()
    yield "FLEET", schemas.FLEET
    yield "scenario", scenario_schema()


@pytest.mark.parametrize(("name", "schema"), list(all_schemas()))
def test_patterns_are_anchored_at_the_end_only_by_a_final_dollar(name: str, schema: Any) -> None:
    """ECMA-262's ``$`` (the end of the text) is read as ``\\Z`` only when final: no other ``$`` may occur."""
    for node in walk(schema):
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            assert "$" not in pattern[:-1], (name, pattern)
            assert schemas.ecma_regex(pattern).search("x\n") is None or not pattern.endswith("$")


def test_schemas_are_valid_and_their_validators_compiled_once() -> None:
    for _, schema in all_schemas():
        schemas.StrictValidator.check_schema(schema)
    assert schemas.validator(BODIES["Load"]) is schemas.validator(BODIES["Load"])


@pytest.mark.parametrize(
    ("value", "number", "integer"),
    [
        (5, True, True),
        (5.0, True, True),  # the number 5, as JSON Schema says (whole_numbers makes it an int)
        (5.5, True, False),
        (10**400, True, True),  # far out of every range, but a number (and no OverflowError)
        (math.nan, False, False),  # Python's JSON reader takes NaN and Infinity; they are no JSON numbers
        (math.inf, False, False),
        (True, False, False),
        ("5", False, False),
    ],
)
def test_numbers_are_finite_and_integers_whole(value: Any, number: bool, integer: bool) -> None:
    check = schemas.validator({})
    assert (check.is_type(value, "number"), check.is_type(value, "integer")) == (number, integer)


def test_a_pattern_dollar_is_the_end_of_the_text() -> None:
    fleet = {"meters": [{"port": 0, "serial": "1ISA0200000001\n"}]}
    problem = schemas.first_problem(schemas.FLEET, fleet)
    assert problem is not None and problem.where == "meters[0].serial"


@pytest.mark.parametrize(
    ("body", "data", "code", "message"),
    [
        ("Load", {"current_A": "1"}, "bad_type", "current_A must be a number from -100000 to 100000, or null"),
        ("Load", {"current_A": 1e9}, "bad_value", "current_A must be a number from -100000 to 100000, or null"),
        ("Load", {"amps": 1}, "unknown_key", "unknown key 'amps'; allowed: current_A, ramp_s, voltage_V"),
        ("Switches", {"v1_transaction": 1}, "bad_switch", "v1_transaction must be true or false"),
        ("Switches", {"warp": 1}, "bad_switch", "unknown key 'warp'; allowed: " + ", ".join(sorted(SWITCH_NAMES))),
        ("Power", {}, "bad_type", "on is required"),
        ("Power", {"on": None}, "bad_type", "on must be true or false"),
        ("Advance", {}, "bad_value", "seconds is required"),
        ("Advance", {"seconds": None}, "bad_value", "seconds must be a number above 0 and at most 315360000"),
        ("Advance", {"seconds": "1"}, "bad_type", "seconds must be a number above 0 and at most 315360000"),
        ("ClockSetting", {"mode": 1}, "bad_mode", "mode must be one of real, virtual, null, got 1"),
        ("Registers", {"import_mWh": 1.5}, "bad_value", "import_mWh must be a whole number from 0 to 99999999999999, "),
        ("NetworkRules", {"rules": [{"action": "delay"}]}, "missing_key", "rules[0].delay_ms is required for action "),
        ("NetworkRules", {"rules": [{"action": "status"}]}, "bad_value", "rules[0].status is required for action "),
        ("NetworkRules", {"rules": [{"action": "hang", "count": True}]}, "bad_value", "rules[0].count must be "),
        ("NetworkRules", {"rules": [{"action": "hang", "status": 500}]}, "bad_value", "only applies to action status"),
        ("FactoryReset", {"x": 1}, "unknown_key", "unknown key 'x'; the body takes no keys: send {}"),
    ],
)
def test_each_refusal_has_todays_code_and_names_the_key(body: str, data: Any, code: str, message: str) -> None:
    problem = schemas.first_problem(BODIES[body], data)
    assert problem is not None
    assert problem.code == code
    assert problem.message().startswith(message) or message in problem.message(), problem.message()


def test_the_refusal_picked_is_deterministic_unknown_keys_first() -> None:
    """Several problems: an unknown key wins (as the hand-written checks refused keys first), then the first in
    the body, whatever order the keys were written in."""
    data = {"rules": [{"action": "nope", "status": 1}, {"action": "hang", "extra": 1}], "seed": 1.5}
    picked = {repr(schemas.first_problem(BODIES["NetworkRules"], json.loads(json.dumps(data)))) for _ in range(3)}
    assert len(picked) == 1
    only = schemas.first_problem(BODIES["NetworkRules"], data)
    assert only is not None and (only.code, only.where) == ("unknown_key", "rules[1]")
    reordered = {"seed": 1.5, "rules": [{"status": 1, "action": "nope"}]}
    problem = schemas.first_problem(BODIES["NetworkRules"], reordered)
    assert problem is not None and problem.where == "rules[0].action"


def test_next_record_refusals_list_the_known_kinds() -> None:
    problem = schemas.first_problem(BODIES["NextRecord"], {"kind": "nope"})
    assert problem is not None and problem.extra["known"] == BODIES["NextRecord"]["properties"]["kind"]["enum"]


def test_published_schemas_carry_no_internal_annotations() -> None:
    text = json.dumps(schemas.public(BODIES))
    assert not re.search(r'"x-[a-z]+"', text)


def test_whole_numbers_hands_integers_on_as_ints() -> None:
    """JSON writes the integer 5 as ``5`` or ``5.0``; the schema accepts both, and the twin gets the int."""
    rules = {"seed": 7.0, "rules": [{"action": "status", "status": 503.0, "count": 2.0, "probability": 1.0}]}
    assert schemas.first_problem(schemas.NETWORK_RULES, rules) is None
    normal = schemas.whole_numbers(schemas.NETWORK_RULES, rules)
    assert normal == {"seed": 7, "rules": [{"action": "status", "status": 503, "count": 2, "probability": 1.0}]}
    assert [type(v) for v in normal["rules"][0].values()] == [str, int, int, float]
    fleet = schemas.whole_numbers(schemas.FLEET["$defs"]["meters"], [{"port": 80.0}], schemas.FLEET)
    assert fleet == [{"port": 80}] and type(fleet[0]["port"]) is int
