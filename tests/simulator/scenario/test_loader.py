from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from iemdcr_twin.simulator.control.records import MAX_PG, PG_PATTERN
from iemdcr_twin.simulator.scenario.loader import ScenarioFileError, load_file, load_text, schema, schema_path

GOOD = """
version: 1
name: a minimal scenario
steps:
  - wait_for: {event: initialised, timeout: 1s}
  - start: {}
    expect: {status: OK}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioFileError) as caught:
        load_text(text, Path("scenarios/broken.yaml"))
    return caught.value.messages


def test_a_good_file_loads() -> None:
    scenario = load_text(GOOD, Path("scenarios/minimal.yaml"))
    assert scenario.name == "a minimal scenario"
    assert [step.action for step in scenario.steps] == ["wait_for", "start"]
    assert scenario.steps[1].expect == {"status": "OK"}
    assert scenario.seed == "minimal"
    assert scenario.driver["CI"] == "DE*ISA*E0001"


def test_the_published_schema_is_a_valid_versioned_schema() -> None:
    data = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(data)
    assert data["properties"]["version"] == {"const": 1, "description": "schema version of this file"}
    assert data["$id"].endswith("/v1.json")
    assert schema() == data


def test_unknown_key_in_a_step_names_file_step_and_key() -> None:
    messages = problems(GOOD.replace("start: {}", "start: {evse: X}"))
    assert messages == [
        "scenarios/broken.yaml: step 1 (start): unknown key evse; allowed: evse_id, identification_data, "
        "identification_flags, identification_level, identification_status, identification_type, tariff_text, "
        "transaction_id"
    ]


def test_unknown_top_level_key() -> None:
    [message] = problems(GOOD + "colour: blue\n")
    assert message.startswith("scenarios/broken.yaml: top level: unknown key colour; allowed: ")


def test_unknown_step_kind_is_an_error() -> None:
    [message] = problems(GOOD + "  - teleport: 5s\n")
    assert message.startswith("scenarios/broken.yaml: step 2: unknown key teleport")


def test_two_actions_in_one_step() -> None:
    [message] = problems(GOOD + "  - load: {current_A: 1}\n    advance: 5s\n")
    assert "step 2: one action per step (found: load, advance)" in message


def test_bad_duration_names_step_and_key() -> None:
    [message] = problems(GOOD.replace("timeout: 1s", "timeout: 1 minute"))
    assert message == (
        "scenarios/broken.yaml: step 0 (wait_for): key timeout: "
        "'1 minute' is not a duration: write 250ms, 30s, 30m or 2h"
    )


@pytest.mark.parametrize("step", ["advance: 99999999h", "clock: {advance: 87601h}", "advance: 315360000001ms"])
def test_an_advance_beyond_the_control_apis_cap_is_refused_by_the_schema(step: str) -> None:
    [message] = problems(GOOD + f"  - {step}\n")
    assert message.startswith("scenarios/broken.yaml: step 2 (")
    assert "is not a duration above 0 and at most 87600h (10 years, as POST /api/clock/advance takes)" in message


def test_an_advance_up_to_the_cap_loads() -> None:
    load_text(GOOD + "  - advance: 87600h\n  - clock: {advance: 315360000s}\n", Path("scenarios/cap.yaml"))


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ("advance: 0s", "step 2 (advance)"),
        ("advance: 0.000ms", "step 2 (advance)"),
        ("clock: {advance: 00h}", "step 2 (clock): key advance"),
    ],
)
def test_a_zero_advance_is_refused_when_loading(step: str, where: str) -> None:
    value = step.split(": ")[-1].rstrip("}")
    [message] = problems(GOOD + f"  - {step}\n")
    assert message == (
        f"scenarios/broken.yaml: {where}: {value!r} is not a duration above 0 and at most 87600h (10 years, as POST "
        "/api/clock/advance takes): write 250ms, 30s, 30m or 2h"
    )


@pytest.mark.parametrize(
    ("step", "where"),
    [("wait: 999999999999999999999h", "step 2 (wait)"), ("clock: {wait: 87601h}", "step 2 (clock): key wait")],
)
def test_a_wait_beyond_the_advance_cap_is_refused_when_loading(step: str, where: str) -> None:
    value = step.split(": ")[-1].rstrip("}")
    [message] = problems(GOOD + f"  - {step}\n")
    assert message == (
        f"scenarios/broken.yaml: {where}: {value!r} is not a duration of at most 87600h (10 years, as long as an "
        "advance may be): write 250ms, 30s, 30m or 2h"
    )


def test_a_wait_of_zero_up_to_the_cap_loads() -> None:
    load_text(GOOD + "  - wait: 0s\n  - clock: {wait: 87600h}\n  - wait: 315360000000ms\n", Path("scenarios/w.yaml"))


# 9998-12-31T23:59:59.999Z too: the message shows it as written, not rounded to 253370764800 seconds
@pytest.mark.parametrize("epoch", ["9999-06-01T00:00:00Z", "0001-06-01T00:00:00+00:00", "9998-12-31T23:59:59.999Z"])
def test_an_epoch_a_meter_cannot_show_is_refused_naming_it_as_written_and_the_range(epoch: str) -> None:
    [message] = problems(f"epoch: '{epoch}'\n" + GOOD)
    assert message == (
        f"scenarios/broken.yaml: key epoch: '{epoch}' is outside the times a meter can show (0002-01-01T00:00:00Z "
        "to 9998-12-31T23:59:59Z, -62104060800 to 253370764799 seconds since 1970)"
    )


def test_errors_inside_repeat_name_both_steps() -> None:
    text = GOOD + "  - repeat:\n      times: 2\n      steps:\n        - load: {current: 5}\n"
    [message] = problems(text)
    assert message.startswith("scenarios/broken.yaml: step 2 (repeat) > step 0 (load): unknown key current")


def test_wrong_type_and_wrong_enum() -> None:
    messages = problems(GOOD.replace("status: OK", "status: FINE").replace("timeout: 1s", "timeout: 5"))
    assert len(messages) == 2
    assert "step 0 (wait_for): key timeout" in messages[0]
    assert "step 1 (start): key expect.status: 'FINE' is not one of" in messages[1]


def test_missing_required_keys() -> None:
    [message] = problems("version: 1\nname: x\n")
    assert message == "scenarios/broken.yaml: top level: 'steps' is a required property"


def test_wrong_version() -> None:
    [message] = problems(GOOD.replace("version: 1", "version: 2"))
    assert "key version: 1 was expected" in message


def test_driver_config_is_checked_like_the_driver_does() -> None:
    [message] = problems(GOOD + "driver: {timezone: Europe/Atlantis}\n")
    assert message.startswith("scenarios/broken.yaml: key driver.timezone: 'Europe/Atlantis' is neither an offset")
    [message] = problems(GOOD + "driver: {datetime_resync_interval: 30}\n")
    assert "key driver.datetime_resync_interval: 30 is outside the allowed range 1..24" in message


def test_meter_switch_values_are_checked() -> None:
    [message] = problems(GOOD + "meter: {signature_delay_ms: 1000000}\n")
    assert "key meter.signature_delay_ms" in message


def test_marks_must_exist_before_use() -> None:
    text = GOOD + "  - expect_requests: {since: later, match: [{method: GET}]}\n  - mark: later\n"
    [message] = problems(text)
    assert "step 2 (expect_requests): key since: 'later' names no earlier mark" in message


def test_expect_on_a_step_other_than_start_or_stop() -> None:
    [message] = problems(GOOD + "  - advance: 5s\n    expect: {status: OK}\n")
    assert "step 2 (advance): key expect only follows start or stop" in message


def test_standalone_expect_needs_an_earlier_response() -> None:
    text = "version: 1\nname: x\nsteps:\n  - expect: {status: OK}\n"
    [message] = problems(text)
    assert "step 0 (expect): expect checks the previous start/stop response" in message


def test_where_only_on_powermeter() -> None:
    [message] = problems(GOOD.replace("event: initialised,", "event: initialised, where: {current_A: 1},"))
    assert "key where only applies to event powermeter" in message


def test_record_only_on_transaction_ended() -> None:
    [message] = problems(GOOD.replace("event: initialised,", "event: initialised, record: {verifies: true},"))
    assert "key record only applies to event transaction_ended" in message


def test_host_dst_is_no_longer_a_driver_key() -> None:
    """The host's zone plays no part in the TM the driver writes (driver fix 12), so nothing simulates it."""
    [message] = problems(GOOD + "driver: {host_dst: true}\n")
    assert "unknown key host_dst" in message


def test_invalid_yaml_names_line() -> None:
    [message] = problems("version: 1\nname: [unclosed\n")
    assert message.startswith("scenarios/broken.yaml: line ")
    assert "not valid YAML" in message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"version: 1\nname: caf\xe9\nsteps: [{advance: 1s}]\n", "can't decode byte 0xe9 in position 20"),
        (b"\xff\xfe", "can't decode byte 0xff in position 0"),
    ],
)
def test_a_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path, raw: bytes, reason: str) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(raw)
    with pytest.raises(ScenarioFileError) as caught:
        load_file(path)
    [message] = caught.value.messages
    assert message.startswith(f"{path}: not valid YAML: 'utf-8' codec {reason}")
    assert "\n" not in message


def test_a_key_written_twice_is_refused_naming_file_line_and_key() -> None:
    [message] = problems(GOOD + "  - wait_for: {event: initialised, timeout: 1s, event: powermeter}\n")
    assert message == (
        "scenarios/broken.yaml: line 8, column 49: not valid YAML: key 'event' appears twice (first on line 8); "
        "write it once"
    )
    [message] = problems(GOOD + "name: another\n")
    assert message.startswith("scenarios/broken.yaml: line 8, column 1: not valid YAML: key 'name' appears twice")


def test_a_number_with_an_exponent_is_a_number() -> None:
    scenario = load_text(GOOD + "meter: {activation_threshold_A: 2.5e3}\n", Path("e.yaml"))
    assert scenario.meter["activation_threshold_A"] == 2500.0
    [message] = problems(GOOD + "meter: {activation_threshold_A: 1.0e300}\n")
    assert (
        message
        == "scenarios/broken.yaml: key meter.activation_threshold_A: 1e+300 is greater than the maximum of 10000"
    )


def test_yaml_on_off_booleans_are_accepted_for_power() -> None:
    scenario = load_text(GOOD + "  - power: off\n  - power: on\n  - power: {cycle: 2s}\n", Path("p.yaml"))
    assert [step.value for step in scenario.steps[2:]] == [False, True, {"cycle": "2s"}]


def test_all_problems_of_a_file_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(GOOD.replace("start: {}", "start: {evse: X}") + "  - advance: soon\n", encoding="utf-8")
    with pytest.raises(ScenarioFileError) as caught:
        load_file(path)
    assert len(caught.value.messages) == 2
    assert all(message.startswith(str(path)) for message in caught.value.messages)


def test_schema_and_semantic_problems_are_reported_together_each_naming_its_key() -> None:
    text = (
        "epoch: '2025-06-06T09:00:00'\n"  # no UTC offset: a semantic check
        + GOOD.replace("start: {}", "start: {evse: X}")
        + "  - wait_for: {event: initialised, timeout: 1s, since: never}\n"  # no such mark: a semantic check
        + "  - repeat: {times: 2, steps: [{advance: soon}, {wait_for: {event: initialised, timeout: 1s, since: gone}}]}"
        + "\n"
    )
    assert sorted(problems(text)) == [
        "scenarios/broken.yaml: key epoch: '2025-06-06T09:00:00' is not ISO 8601 with an offset (no UTC offset)",
        "scenarios/broken.yaml: step 1 (start): unknown key evse; allowed: evse_id, identification_data, "
        "identification_flags, identification_level, identification_status, identification_type, tariff_text, "
        "transaction_id",
        "scenarios/broken.yaml: step 2 (wait_for): key since: 'never' names no earlier mark (or use start/previous)",
        "scenarios/broken.yaml: step 3 (repeat) > step 0 (advance): 'soon' is not a duration above 0 and at most "
        "87600h (10 years, as POST /api/clock/advance takes): write 250ms, 30s, 30m or 2h",
        "scenarios/broken.yaml: step 3 (repeat) > step 1 (wait_for): key since: 'gone' names no earlier mark (or use "
        "start/previous)",
    ]


def test_a_step_the_schema_refuses_still_counts_for_the_flow_checks_after_it() -> None:
    text = GOOD.replace("start: {}", "start: {evse: X}") + "  - mark: here\n    colour: red\n"
    text += "  - expect: {status: OK}\n  - wait_for: {event: initialised, timeout: 1s, since: here}\n"
    [unknown_start, unknown_mark_key] = problems(text)
    assert unknown_start.startswith("scenarios/broken.yaml: step 1 (start): unknown key evse")
    assert "step 2" in unknown_mark_key and "colour" in unknown_mark_key


# T01, T0000000001 and T10000000000 too: the control API's ?pg= refuses them (leading zeros, 11 digits)
@pytest.mark.parametrize(
    "value", ["soon", "-1", "t5", "T", "1.5", "[1]", "T01", "T00", "T0000000001", "T10000000000", "10000000000"]
)
def test_a_bad_pagination_names_the_forms_it_takes(value: str) -> None:
    [message] = problems(GOOD + f"  - expect_record: {{pagination: {value}}}\n")
    assert message == (
        "scenarios/broken.yaml: step 2 (expect_record): key pagination: must be T<n> (e.g. T5; n without leading "
        "zeros, at most 10 digits), a whole number n from 0 to 9999999999, next (the previous checked record's PG + "
        "1) or same"
    )
    [message] = problems(GOOD.replace("expect: {status: OK}", f"expect: {{record: {{pagination: {value}}}}}"))
    assert message.startswith("scenarios/broken.yaml: step 1 (start): key expect.record.pagination: must be T<n>")


@pytest.mark.parametrize(
    ("value", "loaded"),
    [
        ("T5", "T5"),
        ("T0", "T0"),
        ("T9999999999", "T9999999999"),
        ("5", 5),
        ("9999999999", 9999999999),
        ("next", "next"),
        ("same", "same"),
    ],
)
def test_the_pagination_forms_load(value: str, loaded: object) -> None:
    scenario = load_text(GOOD + f"  - expect_record: {{pagination: {value}}}\n", Path("p.yaml"))
    assert scenario.steps[2].value == {"pagination": loaded}


def test_the_pagination_forms_are_the_control_apis_pg() -> None:
    """T<n> as ``?pg=`` takes it (control/records.py PG_PATTERN), n up to MAX_PG as a whole number too."""
    step = schema()["$defs"]["step"]["properties"]
    rules = [
        step["expect_record"]["properties"]["pagination"],
        step["expect"]["properties"]["record"]["properties"]["pagination"],
    ]
    for rule in rules:
        number, text = rule["anyOf"]
        assert (number["minimum"], number["maximum"]) == (0, MAX_PG)
        assert text["pattern"] == f"^({PG_PATTERN.pattern}|next|same)$"


def test_expect_conformance_names_unknown_checks_and_bad_verdicts() -> None:
    messages = problems(GOOD + "  - expect_conformance: {checks: {receipt_fetched: PASS, polling_rate: GREEN}}\n")
    unknown, bad = sorted(messages, key=lambda message: "unknown key" not in message)
    assert unknown.startswith(
        "scenarios/broken.yaml: step 2 (expect_conformance): key checks: unknown key receipt_fetched; allowed: "
    )
    assert bad.startswith(
        "scenarios/broken.yaml: step 2 (expect_conformance): key checks.polling_rate: is not a verdict: write PASS"
    )
    [message] = problems(GOOD + "  - expect_conformance: {verdict: {in: [PASS, OK]}}\n")
    assert "step 2 (expect_conformance): key verdict: is not a verdict" in message


def test_expect_conformance_until_must_name_an_earlier_mark() -> None:
    [message] = problems(GOOD + "  - expect_conformance: {until: stopped, verdict: PASS}\n  - mark: stopped\n")
    assert "step 2 (expect_conformance): key until: 'stopped' names no earlier mark" in message


def test_the_schema_lists_exactly_the_checks_a_report_has() -> None:
    from iemdcr_twin.simulator.conformance import ALL_CHECKS

    step = schema()["$defs"]["step"]["properties"]["expect_conformance"]
    assert list(step["properties"]["checks"]["properties"]) == [check.id for check in ALL_CHECKS]
