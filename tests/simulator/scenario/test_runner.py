"""The runner's own behaviour: failure stories, checks that must fail, virtual time."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from iemdcr_twin.simulator.scenario import ScenarioResult, load_text, records, run_all, run_scenario
from iemdcr_twin.simulator.scenario.loader import ScenarioFileError


def run(text: str, name: str = "probe") -> ScenarioResult:
    return asyncio.run(run_scenario(load_text(text, Path(f"{name}.yaml"))))


HEAD = """
version: 1
name: probe
steps:
  - wait_for: {event: initialised, timeout: 1s}
"""


def test_a_failed_expect_tells_step_expected_got_and_last_requests() -> None:
    result = run(HEAD + "  - load: {current_A: 25, voltage_V: 400}\n  - start: {}\n    expect: {status: OK}\n")
    assert not result.passed
    failure = result.failure
    assert failure is not None
    assert failure.step == "step 2 (start)"
    assert "'status': 'OK'" in failure.expected or '"status":"OK"' in failure.expected
    assert "status UNEXPECTED_ERROR" in failure.got
    assert "current_above_threshold" in failure.got
    assert any("POST /counter/v1/ocmf/receipt" in line and "428" in line for line in failure.requests)
    assert result.steps_run == 2


def test_wait_for_times_out_in_simulated_time() -> None:
    # 90 s of simulated time: long enough to span many polls, short enough that the driver's real HTTP
    # polls (one per simulated second) stay few. Speed is measured by bench/, never here.
    result = run(HEAD + "  - wait_for: {event: reinitialising, timeout: 90s}\n")
    assert not result.passed
    assert result.failure is not None
    assert "not within 90s of simulated time" in result.failure.got
    assert 90 <= result.sim_seconds < 92


def test_advance_jumps_and_wait_lets_the_driver_poll() -> None:
    text = HEAD + (
        "  - mark: a\n  - advance: 1h\n  - expect_published: {since: a, count: {lte: 2}}\n"
        "  - mark: b\n  - wait: 20s\n  - expect_published: {since: b, count: {gte: 19, lte: 21}}\n"
    )
    result = run(text)
    assert result.passed, result.failure and result.failure.story()
    assert 3620 <= result.sim_seconds <= 3625


@pytest.mark.parametrize("step", ["advance: 2h", "wait: 2h", "clock: {wait: 2h}"])
def test_moving_the_clock_past_what_a_meter_can_show_fails_with_a_story(step: str) -> None:
    """An hour before the end of the range: two hours more is refused at once (not a wait no jump can end)."""
    text = "epoch: '9998-12-31T22:59:59Z'\n" + HEAD + "  - advance: 30m\n" + f"  - {step}\n"
    result = run(text)
    assert result.failure is not None, "the step passed"
    assert result.failure.step == "step 2 (" + step.split(":")[0] + ")"
    assert result.failure.expected == "the clock to move 2h on"
    assert result.failure.got.startswith("seconds 7200 would take the clock past 9998-12-31T23:59:59Z")
    left = re.fullmatch(r".*; at most ([0-9]+) seconds are left", result.failure.got)
    assert left is not None and 0 < int(left[1]) <= 1800


def test_expect_requests_absent_fails_when_present() -> None:
    result = run(HEAD + "  - expect_requests: {absent: [{method: POST, path: gw}]}\n")
    assert result.failure is not None
    assert "POST gw should be absent, found 1" in result.failure.got


def test_record_checks_fail_on_wrong_fields() -> None:
    expect = "{record: {verifies: true, pagination: T7, fields: {CI: X}}}"
    text = HEAD + f"  - start: {{}}\n  - stop: {{}}\n    expect: {expect}\n"
    result = run(text)
    assert result.failure is not None
    assert "PG: expected T7, got T1" in result.failure.got
    assert 'payload.CI: expected "X"' in result.failure.got


def test_transaction_ended_record_checks_fail_on_wrong_fields() -> None:
    text = HEAD + (
        "  - start: {identification_data: 04A1B2C3}\n"
        "  - start: {identification_data: 04D5E6F7}\n"
        "  - wait_for: {event: transaction_ended, timeout: 5s, record: {verifies: true, fields: {ID: 04D5E6F7}}}\n"
    )
    result = run(text)
    assert result.failure is not None and result.failure.step == "step 3 (wait_for)"
    assert 'payload.ID: expected "04D5E6F7", got "04A1B2C3"' in result.failure.got


def test_verifies_false_fails_for_a_good_record() -> None:
    result = run(HEAD + "  - start: {}\n  - stop: {}\n  - expect_record: {verifies: false}\n")
    assert result.failure is not None
    assert "expected not to verify, but pyocmf accepts it" in result.failure.got


def test_billable_false_is_checked_beside_verifies_true() -> None:
    """``{verifies: true, billable: false}`` (a record across the register wrap) fails for a billable record."""
    result = run(HEAD + "  - start: {}\n  - stop: {}\n  - expect_record: {verifies: true, billable: false}\n")
    assert result.failure is not None
    assert "expected not to be billable, but pyocmf accepts it" in result.failure.got


def test_record_energy_and_monotonic_count_across_the_register_wrap() -> None:
    assert records.register_step_wh("99999990.000", "00000010.000") == 20_000
    assert records.register_step_wh("00000010.000", "00000012.500") == 2_500
    assert records.register_step_wh("00000012.500", "00000010.000") == -2_500  # a step back stays one
    text = HEAD + (
        "  - registers: {import_mWh: 99999999000000}\n  - start: {}\n  - load: {current_A: 100, voltage_V: 400}\n"
        "  - advance: 6m\n  - load: {current_A: 0}\n  - stop: {}\n"
        "    expect: {record: {verifies: true, billable: false, energy_Wh: 4000, end: {RV: '00000003.000'}}}\n"
        "  - expect_records: {count: 1, monotonic: true}\n"
    )
    result = run(text)
    assert result.passed, result.failure and result.failure.story()


def test_expect_meter_reports_the_differing_key() -> None:
    result = run(HEAD + "  - expect_meter: {gw: {CI: nope}}\n")
    assert result.failure is not None
    assert result.failure.got == 'meter.gw.CI: expected "nope", got "DE*ISA*E0001"'


def test_runner_errors_become_failures_not_crashes() -> None:
    """The twin refuses a step at run time (registers during a transaction): a failure naming it, no crash.
    (A bad network rule was this test's example; the schema refuses it at load time now.)"""
    result = run(HEAD + "  - start: {}\n  - registers: {import_mWh: 5}\n")
    assert result.failure is not None and result.failure.step == "step 2 (registers)"
    assert "transaction is running" in result.failure.got


def test_a_network_rule_the_control_api_refuses_is_refused_when_the_file_loads() -> None:
    """One schema for network rules (simulator/schemas.py): a scenario's rule is checked before anything runs."""
    with pytest.raises(ScenarioFileError) as caught:
        load_text(HEAD + "  - fault: {network: [{action: delay}]}\n", Path("probe.yaml"))
    assert caught.value.messages == ["probe.yaml: step 1 (fault): key network[0]: 'delay_ms' is a required property"]


def test_scenarios_run_concurrently_with_their_own_clocks() -> None:
    quick = load_text(HEAD, Path("quick.yaml"))
    long = load_text(HEAD + "  - advance: 5h\n", Path("long.yaml"))
    results = asyncio.run(run_all([long, quick], limit=2))
    assert [Path(r.path).stem for r in results] == ["long", "quick"]
    assert all(r.passed for r in results)
    assert results[0].sim_seconds >= 5 * 3600 > results[1].sim_seconds


def test_expect_conformance_passes_for_the_bundled_driver() -> None:
    checks = "{gw_once_per_power_cycle: PASS, receipt_after_end: PASS, meter_time_true: PASS, polling_rate: {ne: FAIL}}"
    text = HEAD + f"  - start: {{}}\n  - stop: {{}}\n  - expect_conformance: {{verdict: PASS, checks: {checks}}}\n"
    result = run(text)
    assert result.passed, result.failure and result.failure.story()


def test_expect_conformance_tells_the_check_and_its_first_finding() -> None:
    text = HEAD + "  - restart_driver: {CI: 'DE*ISA*E0002'}\n  - wait_for: {event: initialised, timeout: 5s}\n"
    text += "  - expect_conformance: {verdict: PASS, checks: {gw_once_per_power_cycle: PASS}}\n"
    result = run(text)
    assert result.failure is not None
    assert result.failure.step == "step 3 (expect_conformance)"
    got = result.failure.got
    assert got.startswith('verdict: expected "PASS", got "WARN"; gw_once_per_power_cycle: expected "PASS", got "WARN"')
    assert "gw_refused_on_reinit at t+" in got and 'POST /counter/v1/ocmf/gw {"CT":"EVSEID"' in got
    assert "-> 428: POST gw in a re-initialisation" in got
    assert got.endswith("(report WARN: gw_once_per_power_cycle WARN)")


def test_expect_conformance_until_a_mark_closes_the_window() -> None:
    text = HEAD + "  - mark: quiet\n  - expect_conformance: {until: quiet, checks: {polling_rate: {ne: FAIL}}}\n"
    assert run(text).passed
    text = HEAD + "  - mark: early\n  - wait: 10s\n  - expect_conformance: {until: early, verdict: PASS}\n"
    result = run(text)
    assert result.failure is not None
    assert result.failure.expected == "a report with its window closed at 'early'"
    assert "is before the last request judged" in result.failure.got
