"""The report's window: the gap after the last poll is judged up to its end, which ``until`` can bring forward."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iemdcr_twin.simulator.cli import main
from iemdcr_twin.simulator.conformance import parse_until
from tests.support.lab import SERIAL, Lab, check_of
from tests.support.meter import USER

REPORT = f"/api/meters/{SERIAL}/conformance"


def last_seq(lab: Lab) -> int:
    return lab.twin.slot(SERIAL).host.journal.last_seq


def sim_now(lab: Lab) -> float:
    return lab.twin.clock.now()


async def report_until(lab: Lab, until: str) -> dict[str, Any]:
    resp = await lab.control.get(REPORT, params={"until": until})
    assert resp.status == 200, await resp.text()
    report: dict[str, Any] = await resp.json()
    return report


async def test_a_driver_that_stops_polling_fails_at_report_time(lab: Lab) -> None:
    """The C++ module stops polling after a start it refuses itself (defect 1): that gap is judged."""
    await lab.init()
    await lab.poll(3)
    stopped = last_seq(lab)
    lab.tick(30)
    report = await lab.report()
    check = check_of(report, "polling_rate")
    assert check["verdict"] == "FAIL"
    [finding] = check["evidence"]
    assert finding["code"] == "poll_gap" and finding["seq"] == stopped
    assert "30.0 s" in finding["message"] and "end of the window" in finding["message"]
    assert report["window"] == {"end_sim_time": sim_now(lab), "closed_by": "report"}


async def test_until_closes_the_window_where_the_lab_stopped_the_driver(lab: Lab) -> None:
    await lab.init()
    await lab.poll(3)
    stopped_at = sim_now(lab)
    lab.tick(30)
    report = await report_until(lab, repr(stopped_at + 2))  # seconds since the epoch
    assert check_of(report, "polling_rate")["verdict"] == "PASS"
    assert report["window"] == {"end_sim_time": stopped_at + 2, "closed_by": "until"}
    rfc3339 = datetime.fromtimestamp(stopped_at + 4, UTC).isoformat()
    assert check_of(await report_until(lab, rfc3339), "polling_rate")["verdict"] == "PASS"
    # the lab did not stop the driver after all: without until the gap is judged
    assert check_of(await lab.report(), "polling_rate")["verdict"] == "FAIL"


async def test_a_trailing_gap_is_found_once_even_when_polling_resumes(lab: Lab) -> None:
    await lab.init()
    await lab.poll(2)
    lab.tick(20)
    assert check_of(await lab.report(), "polling_rate")["findings"] == 1
    assert check_of(await lab.report(), "polling_rate")["findings"] == 1
    await lab.poll(1)  # 21 s after the last poll: the same gap, already found
    await lab.poll(2)
    check = check_of(await lab.report(), "polling_rate")
    assert (check["verdict"], check["findings"]) == ("FAIL", 1)


async def test_no_trailing_gap_while_unpowered_or_across_a_jump(lab: Lab) -> None:
    await lab.init()
    await lab.poll(2)
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power", {"on": False})
    lab.tick(60)
    assert check_of(await lab.report(), "polling_rate")["verdict"] == "PASS"  # unplugged: nobody can poll
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/power", {"on": True})
    await lab.init()
    await lab.poll(2)
    await lab.jump(3600)
    lab.tick(10)
    assert check_of(await lab.report(), "polling_rate")["verdict"] == "PASS"  # the interval holds a jump


async def test_a_jump_after_until_does_not_excuse_the_gap_before_it(lab: Lab) -> None:
    await lab.init()
    await lab.poll(2)
    lab.tick(10)
    until = sim_now(lab)
    await lab.jump(3600)
    assert check_of(await report_until(lab, repr(until)), "polling_rate")["verdict"] == "FAIL"


async def test_receipt_grace_is_judged_at_the_end_of_the_window(lab: Lab) -> None:
    await lab.init()
    await lab.charge()
    await lab.post("receipt", {"TX": "E"})  # 428: the defensive E of the next start, no record to fetch
    assert await lab.post("user", USER) == 200
    assert await lab.post("receipt", {"TX": "B"}) == 200
    assert await lab.post("receipt", {"TX": "E"}) == 200  # ...and the record is never fetched
    ended_at = sim_now(lab)
    lab.tick(20)
    assert check_of(await report_until(lab, repr(ended_at + 5)), "receipt_after_end")["verdict"] == "PASS"
    assert check_of(await lab.report(), "receipt_after_end")["verdict"] == "FAIL"


@pytest.mark.parametrize(
    ("until", "says"),
    [
        ("yesterday", "neither RFC 3339"),
        ("nan", "neither RFC 3339"),
        ("-5", "neither RFC 3339"),
        ("1e9", "neither RFC 3339"),
        ("\u0661\u0667\u0665\u0660", "neither RFC 3339"),  # Arabic-Indic digits: float() would take them
        ("1750000060\n", "neither RFC 3339"),
        ("2025-06-15T15:06:40", "no UTC offset"),
        ("2025-02-30T15:06:40Z", "not a valid date"),
        ("", "neither RFC 3339"),
    ],
)
async def test_bad_until_is_a_400_naming_the_parameter(lab: Lab, until: str, says: str) -> None:
    resp = await lab.control.get(REPORT, params={"until": until})
    body = await resp.json()
    assert resp.status == 400 and body["error"] == "bad_query"
    assert body["message"].startswith("until: ") and says in body["message"]


async def test_until_in_the_future_or_before_the_last_request_is_a_400(lab: Lab) -> None:
    await lab.init()
    await lab.poll(2)
    resp = await lab.control.get(REPORT, params={"until": repr(sim_now(lab) + 60)})
    body = await resp.json()
    assert resp.status == 400 and "after the current simulated time" in body["message"]
    resp = await lab.control.get(REPORT, params={"until": repr(sim_now(lab) - 1.5)})
    body = await resp.json()
    assert resp.status == 400 and body["message"].startswith("until: ")
    assert f"seq {last_seq(lab)}" in body["message"] and "before the last request" in body["message"]


def test_parse_until_reads_rfc3339_and_epoch_seconds() -> None:
    assert parse_until("1750000060.5") == 1750000060.5
    assert parse_until("2025-06-15T15:07:40Z") == 1750000060.0
    assert parse_until("2025-06-15T17:07:40.5+02:00") == 1750000060.5
    assert parse_until("1750000060") == 1750000060.0


async def test_cli_until_closes_the_window_and_bad_values_name_the_flag(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await lab.init()
    await lab.poll(2)
    stopped_at = sim_now(lab)
    lab.tick(30)
    url = str(lab.control.make_url("")).rstrip("/")
    out = tmp_path / "r.json"
    base = ["conformance", "report", "--url", url, "--serial", SERIAL, "--out", str(out), "--state-dir", str(tmp_path)]

    def run(*extra: str) -> int:
        return main([*base, *extra])

    assert await asyncio.to_thread(run, "--until", datetime.fromtimestamp(stopped_at + 1, UTC).isoformat()) == 0
    assert "PASS           GET metervalue near 1 Hz" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(run, "--until", "soon")
    assert exited.value.code == 2
    assert "--until" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "--until", repr(stopped_at - 10)) == 1
    err = capsys.readouterr().err
    assert "--until" in err and "before the last request" in err
    assert await asyncio.to_thread(run) == 0
    assert "FAIL           GET metervalue near 1 Hz" in capsys.readouterr().out
