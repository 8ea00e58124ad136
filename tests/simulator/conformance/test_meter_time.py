"""``meter_time_true``: the TM a driver writes is judged against the clock that driver ought to read.

The lab fixture is a foreign driver with a fake wall clock (``Lab.wall``), so nothing depends on the real time
of day; ``attach(host, TrueTime.SHARED)`` is what the scenario runner declares for the bundled driver.
"""

from __future__ import annotations

from typing import Any

import pytest

from iemdcr_twin.simulator.conformance import ConformanceMonitor, TrueTime, attach
from iemdcr_twin.simulator.conformance.meter_time import last_reading_tm, tm_epoch
from iemdcr_twin.simulator.model.timefmt import format_tm
from tests.support.lab import SERIAL, Lab, check_of
from tests.support.meter import USER

DAY = 86_400.0


def time_check(report: dict[str, Any]) -> dict[str, Any]:
    return check_of(report, "meter_time_true")


async def test_a_foreign_driver_writing_wall_time_passes_even_after_the_twin_clock_jumped(lab: Lab) -> None:
    await lab.init()
    await lab.jump(DAY)  # the lab advanced the twin's clock; a foreign driver still writes wall time
    lab.tick(5)
    assert await lab.post("datetime", {"TM": lab.tm()}) == 200
    check = time_check(await lab.report())
    assert (check["verdict"], check["exercised"]) == ("PASS", 2)


async def test_a_foreign_driver_writing_the_twin_clock_after_a_jump_fails_with_the_skew(lab: Lab) -> None:
    await lab.init()
    await lab.jump(DAY)
    assert await lab.post("datetime", {"TM": format_tm(lab.twin.clock.now(), 60)}) == 200
    check = time_check(await lab.report())
    assert check["verdict"] == "FAIL"
    [finding] = check["evidence"]
    assert finding["code"] == "time_not_true"
    assert finding["detail"]["skew_s"] == pytest.approx(DAY - 0.25, abs=0.002)  # WALL0 is T0 + 0.25 s
    assert "ahead of the true time" in finding["message"] and "wall clock" in finding["message"]


async def test_the_summer_time_defect_shows_a_skew_of_3600_s(lab: Lab) -> None:
    """The C++ module adds an hour in summer but keeps +0100: the instant it names is an hour late."""
    await lab.post("receipt", {"TX": "E"})
    assert await lab.get("gw") == 200
    assert await lab.post("gw", lab.gw_body(TM=lab.tm(3600))) == 200
    report = await lab.report()
    [finding] = time_check(report)["evidence"]
    assert finding["detail"]["skew_s"] == 3600.0
    assert finding["detail"]["written"] == "2025-06-15T16:06:40.250Z"
    assert finding["detail"]["true_time"] == "2025-06-15T15:06:40.250Z"
    assert report["verdict"] == "FAIL"


@pytest.mark.parametrize(("offset_s", "verdict"), [(59.0, "PASS"), (-59.0, "PASS"), (61.0, "FAIL"), (-61.0, "FAIL")])
async def test_sixty_seconds_either_way_is_the_tolerance(lab: Lab, offset_s: float, verdict: str) -> None:
    assert await lab.post("gw", lab.gw_body(TM=lab.tm(offset_s))) == 200
    assert time_check(await lab.report())["verdict"] == verdict


async def test_a_write_behind_the_last_signed_reading_warns(lab: Lab) -> None:
    await lab.init()
    await lab.charge()
    lab.tick(2)
    assert await lab.post("datetime", {"TM": lab.tm(-40)}) == 200  # within 60 s, but before the record's end
    report = await lab.report()
    check = time_check(report)
    assert check["verdict"] == "WARN"
    [finding] = check["evidence"]
    assert finding["code"] == "time_behind_record"
    assert finding["detail"]["behind_s"] == pytest.approx(38.0, abs=0.002)
    record_end = lab.twin.slot(SERIAL).meter.records[-1].end_TM
    assert finding["detail"]["last_signed"] == record_end


async def test_the_shared_clock_is_the_truth_when_the_driver_reads_it(lab: Lab) -> None:
    attach(lab.twin.slot(SERIAL).host, TrueTime.SHARED)
    await lab.init()  # wall time, 0.25 s off the shared clock: fine
    await lab.jump(DAY)
    assert await lab.post("datetime", {"TM": format_tm(lab.twin.clock.now(), 60)}) == 200
    assert time_check(await lab.report())["verdict"] == "PASS"
    assert await lab.post("datetime", {"TM": lab.tm()}) == 200  # Lab.tm(): the fake Lab.wall, a day behind
    report = await lab.report()
    assert report["true_time"] == "shared_clock"
    [finding] = time_check(report)["evidence"]
    assert finding["detail"]["skew_s"] == pytest.approx(-DAY + 0.25, abs=0.002)
    assert "behind the true time" in finding["message"]


async def test_with_no_known_true_time_nothing_is_judged(lab: Lab) -> None:
    attach(lab.twin.slot(SERIAL).host, TrueTime.UNKNOWN)
    assert await lab.post("gw", lab.gw_body(TM="2020-01-01T00:00:00,000+0100")) == 200
    await lab.post("receipt", {"TX": "E"})
    assert await lab.post("user", USER) == 200
    report = await lab.report()
    assert time_check(report)["verdict"] == "NOT_EXERCISED"
    assert report["true_time"] == "unknown"


async def test_a_tm_the_meter_refuses_is_not_judged(lab: Lab) -> None:
    assert await lab.post("datetime", {"TM": "tomorrow"}) == 400
    assert time_check(await lab.report())["verdict"] == "NOT_EXERCISED"


def test_tm_helpers_read_the_meter_formats() -> None:
    assert tm_epoch("2025-06-15T16:06:40,250+0100 I") == 1_750_000_000.25
    assert tm_epoch("2025-06-15T16:06:40,250+0100") == 1_750_000_000.25
    assert tm_epoch("16:06") is None and tm_epoch(None) is None
    record = 'OCMF|{"PG":"T1","TT":"a|b","RD":[{"TM":"x B"},{"TM":"2025-06-15T16:06:40,250+0100 S"}]}|{"SD":"00"}'
    assert last_reading_tm(record) == "2025-06-15T16:06:40,250+0100 S"
    assert last_reading_tm("OCMF|{broken") is None and last_reading_tm(None) is None


async def test_a_restored_meter_and_a_factory_reset_set_the_last_signed_reading(lab: Lab) -> None:
    await lab.init()
    await lab.charge()
    host = lab.twin.slot(SERIAL).host
    end = host.meter.records[-1].end_TM
    fresh = ConformanceMonitor(host)  # attached later, e.g. to a meter restored from its state directory
    assert fresh.situation.last_signed_tm == end
    await lab.control_ok("POST", f"/api/meters/{SERIAL}/factory-reset")
    assert fresh.situation.last_signed is None
