"""The scenario DSL uses the driver's names (EVerest's powermeter interface); the old names still load, reported."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import EVENT_NAMES
from iemdcr_twin.driver.types import Powermeter
from iemdcr_twin.simulator.scenario import ScenarioFileError, ScenarioResult, cli, load_text, run_scenario
from iemdcr_twin.simulator.scenario.expectations import COUNTED_EVENTS, POWERMETER_FIELDS
from iemdcr_twin.simulator.scenario.loader import DEPRECATED_EVENTS, DEPRECATED_KEYS, schema

HEAD = """version: 1
name: probe
steps:
  - wait_for: {event: initialised, timeout: 1s}
"""
DRIVERS_NAMES = (
    HEAD
    + """  - wait_for: {event: public_key_ocmf, since: start, timeout: 1s}
  - load: {current_A: 25, voltage_V: 400}
  - wait_for: {event: powermeter, timeout: 5s, where: {current_A: 25, energy_Wh_import: 0}}
  - expect_published: {public_key_ocmf: meter, current_A: 25}
  - expect_errors: {communication_fault_raised: 0, communication_fault_cleared: 0, reinitialising: 0,
                    communication_fault_active: false, initialised: true}
"""
)
OLD_NAMES = (
    HEAD
    + """  - wait_for: {event: public_key, since: start, timeout: 1s}
  - load: {current_A: 25, voltage_V: 400}
  - wait_for: {event: published, timeout: 5s, where: {current_A: 25, energy_Wh_import: 0}}
  - expect_published: {public_key: meter, current_A: 25}
  - expect_errors: {raised: 0, cleared: 0, reinitialised: 0, active: false, initialised: true}
"""
)


def run(text: str) -> ScenarioResult:
    return asyncio.run(run_scenario(load_text(text, Path("probe.yaml"))))


def step_schema(action: str) -> dict[str, dict[str, object]]:
    properties: dict[str, dict[str, object]] = schema()["$defs"]["step"]["properties"][action]["properties"]
    return properties


def test_wait_for_events_are_the_drivers_events() -> None:
    event = step_schema("wait_for")["event"]
    assert isinstance(event["enum"], list)
    assert set(event["enum"]) - set(DEPRECATED_EVENTS) == EVENT_NAMES
    assert set(DEPRECATED_EVENTS.values()) <= EVENT_NAMES


def test_published_fields_are_the_powermeters() -> None:
    assert set(POWERMETER_FIELDS) == {field.name for field in dataclasses.fields(Powermeter)}
    assert set(step_schema("wait_for")["where"]["properties"]) == set(POWERMETER_FIELDS)  # type: ignore[arg-type]
    assert set(POWERMETER_FIELDS) < set(step_schema("expect_published"))


def test_expect_errors_counts_events_and_reads_driver_state_by_their_names() -> None:
    current = {key for key, spec in step_schema("expect_errors").items() if not spec.get("deprecated")}
    assert set(COUNTED_EVENTS) <= EVENT_NAMES and set(COUNTED_EVENTS) <= current
    states = current - set(COUNTED_EVENTS) - {"since", "warnings", "warning_count"}
    assert states == {"communication_fault_active", "initialised"}
    assert all(isinstance(getattr(IemDcrDriver, name), property) for name in states)


def test_the_schema_marks_exactly_the_deprecated_names() -> None:
    for action in ("expect_published", "expect_errors", "wait_for"):
        properties = step_schema(action)
        marked = {key: spec["description"] for key, spec in properties.items() if spec.get("deprecated")}
        aliases = DEPRECATED_KEYS.get(action, {})
        assert marked == {old: f"deprecated name of {new}" for old, new in aliases.items()}
        assert set(aliases.values()) <= set(properties)
    description = step_schema("wait_for")["event"]["description"]
    assert "published and public_key are deprecated names of powermeter and public_key_ocmf" in str(description)


def test_the_drivers_names_run() -> None:
    scenario = load_text(DRIVERS_NAMES, Path("probe.yaml"))
    assert scenario.deprecations == []
    result = asyncio.run(run_scenario(scenario))
    assert result.passed, result.failure and result.failure.story()


def test_the_old_names_still_run_as_the_drivers_and_each_use_is_reported() -> None:
    scenario = load_text(OLD_NAMES, Path("old.yaml"))
    assert [step.value for step in scenario.steps if step.action in ("wait_for", "expect_errors")][1:] == [
        {"event": "public_key_ocmf", "since": "start", "timeout": "1s"},
        {"event": "powermeter", "timeout": "5s", "where": {"current_A": 25, "energy_Wh_import": 0}},
        {
            "communication_fault_raised": 0,
            "communication_fault_cleared": 0,
            "reinitialising": 0,
            "communication_fault_active": False,
            "initialised": True,
        },
    ]
    assert scenario.steps[4].value == {"public_key_ocmf": "meter", "current_A": 25}
    assert scenario.steps[4].raw == {"expect_published": {"public_key": "meter", "current_A": 25}}
    assert scenario.deprecations == [
        "old.yaml: step 1 (wait_for): key event: 'public_key' is deprecated; write public_key_ocmf "
        "(the driver's event name)",
        "old.yaml: step 3 (wait_for): key event: 'published' is deprecated; write powermeter (the driver's event name)",
        "old.yaml: step 4 (expect_published): key public_key is deprecated; write public_key_ocmf (the driver's name)",
        "old.yaml: step 5 (expect_errors): key raised is deprecated; write communication_fault_raised "
        "(the driver's name)",
        "old.yaml: step 5 (expect_errors): key cleared is deprecated; write communication_fault_cleared "
        "(the driver's name)",
        "old.yaml: step 5 (expect_errors): key reinitialised is deprecated; write reinitialising (the driver's name)",
        "old.yaml: step 5 (expect_errors): key active is deprecated; write communication_fault_active "
        "(the driver's name)",
    ]
    result = asyncio.run(run_scenario(scenario))
    assert result.passed, result.failure and result.failure.story()


def test_an_old_name_beside_its_new_one_is_an_error() -> None:
    with pytest.raises(ScenarioFileError) as caught:
        load_text(HEAD + "  - expect_errors: {raised: 0, communication_fault_raised: 0}\n", Path("both.yaml"))
    assert caught.value.messages == [
        "both.yaml: step 1 (expect_errors): key raised is the deprecated name of communication_fault_raised; "
        "write only communication_fault_raised"
    ]


def test_checks_by_the_drivers_names_fail_when_they_do_not_hold() -> None:
    result = run(HEAD + "  - expect_errors: {communication_fault_active: true, reinitialising: 1}\n")
    assert result.failure is not None
    assert result.failure.got.startswith(
        "reinitialising events: expected 1, got 0; driver communication_fault_active is False; driver events: "
    )
    result = run(HEAD + "  - wait_for: {event: powermeter, timeout: 3s, where: {current_A: 99}}\n")
    assert result.failure is not None
    assert result.failure.expected == 'event powermeter where {"current_A":99}'
    assert "x powermeter, last {" in result.failure.got


def test_the_cli_names_each_deprecated_use_on_stderr_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.yaml").write_text(HEAD + "  - expect_errors: {active: false}\n", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="iemdcr-sim")
    cli.add_parser(parser.add_subparsers(dest="command"))
    assert cli.run(parser.parse_args(["scenario", "run", str(tmp_path)])) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"{tmp_path / 'old.yaml'}: step 1 (expect_errors): key active is deprecated; "
        "write communication_fault_active (the driver's name)\n"
    )
    assert "1 passed, 0 failed" in captured.out


def test_the_readme_lists_exactly_the_deprecated_names() -> None:
    readme = (Path(__file__).resolve().parents[3] / "scenarios" / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Deprecated names", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+): \{(\w+): ([\w.]+)\}` \| `\1: \{(\w+): ([\w.]+)\}`", section, flags=re.MULTILINE)
    events = {old: new for action, _, old, _, new in rows if action == "wait_for"}
    keys: dict[str, dict[str, str]] = {}
    for action, old, _, new, _ in rows:
        if action != "wait_for":
            keys.setdefault(action, {})[old] = new
    assert (events, keys) == (DEPRECATED_EVENTS, DEPRECATED_KEYS)
