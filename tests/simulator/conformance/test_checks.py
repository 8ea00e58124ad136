"""The protocol checks over real HTTP: a good driver earns only PASS/NOT_EXERCISED, each bad habit its FAIL."""

from __future__ import annotations

from typing import Any

from tests.support.lab import SERIAL, Lab, check_of
from tests.support.meter import USER


def evidence_seqs(report: dict[str, Any], check_id: str) -> list[int]:
    return [finding["seq"] for finding in check_of(report, check_id)["evidence"]]


async def test_good_client_earns_no_fail_or_warn(lab: Lab) -> None:
    await lab.post("receipt", {"TX": "E"})
    await lab.init()
    await lab.poll(3)
    await lab.charge()
    await lab.poll(3)
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power-cycle")
    lab.tick(1.0)
    assert await lab.get("metervalue") == 200  # time status U: the driver notices and re-initialises
    await lab.init()
    await lab.poll(2)
    await lab.charge()

    report = await lab.report()
    verdicts = {check["id"]: check["verdict"] for check in report["checks"]}
    assert set(verdicts.values()) <= {"PASS", "NOT_EXERCISED"}, verdicts
    for exercised in (
        "gw_once_per_power_cycle",
        "time_set_before_begin",
        "user_before_begin",
        "end_before_begin",
        "receipt_after_end",
        "polling_rate",
        "reinit_after_power_cycle",
        "no_retry_storm",
        "charge_point_type",
        "identification_format",
    ):
        assert verdicts[exercised] == "PASS", exercised
    assert report["verdict"] == "PASS"
    assert report["findings_by_code"] == {}


async def test_gw_written_twice_fails_and_the_journal_entry_carries_the_finding(lab: Lab) -> None:
    await lab.init()
    assert await lab.post("gw", lab.gw_body()) == 428
    report = await lab.report()
    check = check_of(report, "gw_once_per_power_cycle")
    assert check["verdict"] == "FAIL"
    seq = check["evidence"][0]["seq"]
    assert check["evidence"][0]["entry"]["error"] == "gw_already_set"
    journal = await lab.control_ok("GET", f"/api/meters/{SERIAL}/journal?since={seq - 1}&limit=1")
    assert journal["entries"][0]["findings"] == ["gw_repeated"]
    assert report["verdict"] == "FAIL"


async def test_gw_once_again_after_a_power_cycle_is_fine(lab: Lab) -> None:
    await lab.init()
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power-cycle")
    await lab.init()
    check = check_of(await lab.report(), "gw_once_per_power_cycle")
    assert (check["verdict"], check["exercised"]) == ("PASS", 2)


async def test_begin_without_gw_time_user_or_defensive_end_fails_each_rule(lab: Lab) -> None:
    await lab.control_ok("PATCH", f"/api/meters/{SERIAL}/profile", {"require_gw_for_transaction": False})
    assert await lab.post("receipt", {"TX": "B"}) == 200
    report = await lab.report()
    verdicts = {check["id"]: check["verdict"] for check in report["checks"]}
    for rule in ("gw_before_transaction", "time_set_before_begin", "user_before_begin", "end_before_begin"):
        assert verdicts[rule] == "FAIL", rule
    assert report["findings_by_code"] == {"b_before_gw": 1, "b_without_e": 1, "b_without_time": 1, "b_without_user": 1}


async def test_datetime_set_instead_of_gw_counts_as_time_set(lab: Lab) -> None:
    await lab.control_ok("PATCH", f"/api/meters/{SERIAL}/profile", {"require_gw_for_transaction": False})
    assert await lab.post("datetime", {"TM": lab.tm()}) == 200
    await lab.post("receipt", {"TX": "E"})
    assert await lab.post("user", USER) == 200
    assert await lab.post("receipt", {"TX": "B"}) == 200
    verdicts = await lab.verdicts()
    assert verdicts["time_set_before_begin"] == "PASS"
    assert verdicts["gw_before_transaction"] == "FAIL"


async def test_begin_refused_for_current_then_retried_needs_no_second_end(lab: Lab) -> None:
    await lab.init()
    await lab.post("receipt", {"TX": "E"})
    await lab.post("user", USER)
    await lab.control_ok("PUT", f"/api/meters/{SERIAL}/load", {"current_A": 20.0, "voltage_V": 400.0})
    assert await lab.post("receipt", {"TX": "B"}) == 428
    await lab.control_ok("PUT", f"/api/meters/{SERIAL}/load", {"current_A": 0.0})
    assert await lab.post("receipt", {"TX": "B"}) == 200
    assert await lab.post("receipt", {"TX": "B"}) == 428  # a second B while one is open: no E before it
    report = await lab.report()
    assert check_of(report, "end_before_begin")["verdict"] == "FAIL"
    assert check_of(report, "end_before_begin")["findings"] == 1


async def test_datetime_during_a_transaction_fails(lab: Lab) -> None:
    await lab.init()
    await lab.post("receipt", {"TX": "E"})
    await lab.post("user", USER)
    assert await lab.post("receipt", {"TX": "B"}) == 200
    assert await lab.post("datetime", {"TM": lab.tm()}) == 428
    report = await lab.report()
    assert check_of(report, "no_datetime_during_transaction")["verdict"] == "FAIL"
    assert check_of(report, "no_datetime_during_transaction")["evidence"][0]["entry"]["path"].endswith("/datetime")


async def test_no_receipt_fetch_before_the_next_begin_fails_on_the_end(lab: Lab) -> None:
    await lab.init()
    await lab.post("receipt", {"TX": "E"})
    await lab.post("user", USER)
    await lab.post("receipt", {"TX": "B"})
    assert await lab.post("receipt", {"TX": "E"}) == 200
    end_seq = lab.twin.slot(SERIAL).host.journal.last_seq
    assert await lab.post("receipt", {"TX": "B"}) == 200
    report = await lab.report()
    assert check_of(report, "receipt_after_end")["verdict"] == "FAIL"
    assert evidence_seqs(report, "receipt_after_end") == [end_seq]


async def test_no_receipt_fetch_is_judged_at_report_time_after_the_grace(lab: Lab) -> None:
    await lab.init()
    await lab.post("receipt", {"TX": "E"})
    await lab.post("user", USER)
    await lab.post("receipt", {"TX": "B"})
    await lab.post("receipt", {"TX": "E"})
    assert (await lab.verdicts())["receipt_after_end"] == "PASS"  # still within the grace period
    await lab.poll(11)
    assert (await lab.verdicts())["receipt_after_end"] == "FAIL"


async def test_polling_storm_fails(lab: Lab) -> None:
    await lab.init()
    for _ in range(30):
        lab.tick(0.05)
        await lab.get("metervalue")
    report = await lab.report()
    check = check_of(report, "polling_rate")
    assert check["verdict"] == "FAIL"
    assert {finding["code"] for finding in check["evidence"]} == {"poll_too_fast"}


async def test_polling_gap_fails_but_not_across_a_clock_jump_or_power_off(lab: Lab) -> None:
    await lab.init()
    await lab.jump(3600)
    await lab.poll(1)  # the interval holds a jump: not judged
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power", {"on": False})
    lab.tick(60)
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power", {"on": True})
    await lab.poll(1)  # the interval holds a power cycle: not judged
    assert (await lab.verdicts())["polling_rate"] == "NOT_EXERCISED"
    await lab.poll(1)
    lab.tick(7)
    await lab.get("metervalue")
    check = check_of(await lab.report(), "polling_rate")
    assert (check["verdict"], check["exercised"]) == ("FAIL", 2)
    assert check["evidence"][0]["code"] == "poll_gap"


async def test_missing_reinit_after_a_power_cycle_fails(lab: Lab) -> None:
    await lab.init()
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power-cycle")
    await lab.post("user", USER)
    report = await lab.report()
    check = check_of(report, "reinit_after_power_cycle")
    assert check["verdict"] == "FAIL"
    assert check["evidence"][0]["entry"]["path"].endswith("/user")


async def test_a_driver_that_only_polls_after_a_power_cycle_fails_reinit(lab: Lab) -> None:
    await lab.init()
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power-cycle")
    await lab.poll(15)
    assert (await lab.verdicts())["reinit_after_power_cycle"] == "FAIL"


async def test_retry_storm_fails(lab: Lab) -> None:
    await lab.init()
    await lab.post("receipt", {"TX": "E"})
    for _ in range(7):
        lab.tick(0.5)
        assert await lab.post("receipt", {"TX": "X"}) == 400
    report = await lab.report()
    check = check_of(report, "no_retry_storm")
    assert check["verdict"] == "FAIL"
    assert check["evidence"][0]["entry"]["body"] == {"TX": "X"}


async def test_six_identical_failures_or_slow_retries_are_no_storm(lab: Lab) -> None:
    await lab.init()
    for _ in range(6):
        lab.tick(0.5)
        await lab.post("receipt", {"TX": "X"})
    lab.tick(10.0)
    for _ in range(5):
        lab.tick(3.0)
        await lab.post("receipt", {"TX": "X"})
    check = check_of(await lab.report(), "no_retry_storm")
    assert (check["verdict"], check["exercised"]) == ("PASS", 11)


async def test_findings_survive_journal_eviction_and_clearing(lab: Lab) -> None:
    await lab.init()
    await lab.post("gw", lab.gw_body())
    await lab.control_ok("DELETE", f"/api/meters/{SERIAL}/journal")
    report = await lab.report()
    assert check_of(report, "gw_once_per_power_cycle")["verdict"] == "FAIL"
    assert report["findings_by_code"] == {"gw_repeated": 1}


async def test_text_rendering_names_each_check_and_the_evidence(lab: Lab) -> None:
    await lab.init()
    await lab.post("gw", lab.gw_body())
    resp = await lab.control.get(f"/api/meters/{SERIAL}/conformance?format=text")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert "Overall verdict: FAIL" in text
    assert "FAIL gw_once_per_power_cycle: 1 finding(s)" in text
    assert "NOT_EXERCISED" in text


async def test_text_rendering_says_what_each_count_counts(lab: Lab) -> None:
    """``exercised`` is how often the situation arose (here: gw written once in the power cycle); the repeated
    writes are the findings, so the check's line gives both numbers, each with its name."""
    await lab.init()
    for _ in range(3):
        assert await lab.post("gw", lab.gw_body()) == 428
    resp = await lab.control.get(f"/api/meters/{SERIAL}/conformance?format=text")
    lines = (await resp.text()).splitlines()
    line = next(line for line in lines if "[gw_once_per_power_cycle" in line)
    assert line.startswith("FAIL ")
    assert line.endswith("[gw_once_per_power_cycle: situation arose 1 time(s), 3 finding(s)]"), line
    assert "FAIL gw_once_per_power_cycle: 3 finding(s)" in lines
    assert not any("exercised" in line for line in lines)


async def test_bad_format_and_unknown_meter_are_4xx(lab: Lab) -> None:
    resp = await lab.control.get(f"/api/meters/{SERIAL}/conformance?format=pdf")
    assert resp.status == 400 and (await resp.json())["error"] == "bad_query"
    resp = await lab.control.get("/api/meters/1ISA0000000099/conformance")
    assert resp.status == 404 and (await resp.json())["error"] == "unknown_meter"


async def test_a_refused_gw_inside_a_reinitialisation_warns_not_fails(lab: Lab) -> None:
    """EVerest after a driver restart (trace 7-restart): GET gw, POST gw refused 428, then POST datetime."""
    await lab.init()
    await lab.poll(2)
    assert await lab.get("gw") == 200
    lab.tick(0.05)
    assert await lab.post("gw", lab.gw_body()) == 428
    assert await lab.post("datetime", {"TM": lab.tm()}) == 200
    report = await lab.report()
    check = check_of(report, "gw_once_per_power_cycle")
    assert (check["verdict"], check["findings"]) == ("WARN", 1)
    assert check["evidence"][0]["code"] == "gw_refused_on_reinit"
    assert check["evidence"][0]["entry"]["error"] == "gw_already_set"
    assert report["verdict"] == "WARN"


async def test_polls_may_come_between_the_gw_read_and_the_write(lab: Lab) -> None:
    await lab.init()
    assert await lab.get("gw") == 200
    await lab.poll(2)
    assert await lab.post("gw", lab.gw_body()) == 428
    assert check_of(await lab.report(), "gw_once_per_power_cycle")["verdict"] == "WARN"


async def test_gw_repeated_outside_a_reinitialisation_still_fails(lab: Lab) -> None:
    await lab.init()
    assert await lab.get("gw") == 200
    assert await lab.post("gw", lab.gw_body()) == 428  # inside a re-initialisation: WARN
    assert await lab.post("gw", lab.gw_body()) == 428  # again, with no GET gw before it: FAIL
    assert await lab.get("gw") == 200
    assert await lab.get("publickey") == 200
    assert await lab.post("gw", lab.gw_body()) == 428  # the gw read is no longer the last request: FAIL
    report = await lab.report()
    check = check_of(report, "gw_once_per_power_cycle")
    assert check["verdict"] == "FAIL"
    assert [finding["code"] for finding in check["evidence"]] == ["gw_refused_on_reinit", "gw_repeated", "gw_repeated"]
    assert report["verdict"] == "FAIL"


async def _ended_with_a_5_s_signature(lab: Lab) -> None:
    """A transaction begun and ended with success on a meter that takes 5 s to sign its record."""
    await lab.init()
    await lab.control_ok("PATCH", f"/api/meters/{SERIAL}/profile", {"signature_delay_ms": 5000})
    await lab.post("receipt", {"TX": "E"})
    assert await lab.post("user", USER) == 200
    assert await lab.post("receipt", {"TX": "B"}) == 200
    assert await lab.post("receipt", {"TX": "E"}) == 200


async def test_signature_pending_after_a_successful_end_is_no_retry_storm(lab: Lab) -> None:
    """A driver waits for a slow signature (425 every 250 ms); only real failures count towards a storm."""
    await _ended_with_a_5_s_signature(lab)
    for _ in range(16):
        lab.tick(0.25)
        assert await lab.get("receipt") == 425
    lab.tick(1.0)
    assert await lab.get("receipt") == 200
    check = check_of(await lab.report(), "no_retry_storm")
    assert check["verdict"] != "FAIL", check
    assert check["findings"] == 0


async def test_other_failures_still_count_while_a_record_is_being_signed(lab: Lab) -> None:
    await _ended_with_a_5_s_signature(lab)
    for _ in range(7):
        lab.tick(0.25)
        assert await lab.post("receipt", {"TX": "E"}) == 428  # no_transaction, again and again
    assert check_of(await lab.report(), "no_retry_storm")["verdict"] == "FAIL"
