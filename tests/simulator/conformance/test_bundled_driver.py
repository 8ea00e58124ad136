"""The bundled driver against a twin, in-process on one auto-jumping virtual clock: no FAIL where exercised.

Auto-jump makes nearly every polling interval contain a clock jump, so ``polling_rate`` is mostly not judged
here; the other protocol checks are exercised by init, charges, and a power cycle. The driver reads the twin's
clock, so the monitor is told to judge its TM writes against that clock (``TrueTime.SHARED``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.types import TransactionReq, TransactionRequestStatus
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.conformance import TrueTime, attach, build_report
from iemdcr_twin.simulator.fleet import MeterSlot, MeterSpec, Twin
from tests.support.clock import autojumping, frozen_clock, hold_meter_requests
from tests.support.driver import make_req, new_driver, wait
from tests.support.http import GUARD_S
from tests.support.twin import load_for


@pytest.fixture
async def setup(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[SimClock, Twin, MeterSlot, IemDcrDriver]]:
    clock = frozen_clock()
    hold_meter_requests(monkeypatch, clock)
    async with autojumping(clock):
        twin = Twin(clock, seed="conformance-driver")
        slot = twin.add_meter(MeterSpec(port=0))
        attach(slot.host, TrueTime.SHARED)
        await twin.start()
        drv = new_driver(slot.url, clock)
        yield clock, twin, slot, drv
        await drv.stop()
        await twin.stop()


async def one_charge(clock: SimClock, slot: MeterSlot, drv: IemDcrDriver, req: TransactionReq) -> None:
    assert (await drv.start_transaction(req)).status == TransactionRequestStatus.OK
    await load_for(clock, slot.meter, 50.0, 400.0, 120)
    assert (await drv.stop_transaction("tx-1")).status == TransactionRequestStatus.OK


async def test_bundled_driver_earns_no_fail(setup: tuple[SimClock, Twin, MeterSlot, IemDcrDriver]) -> None:
    clock, twin, slot, drv = setup
    await drv.start()
    await wait(drv, "initialised")
    await one_charge(clock, slot, drv, make_req())
    await clock.sleep(30)
    await one_charge(clock, slot, drv, make_req())
    with drv.subscribe(["initialised"]) as events:
        with clock.busy():  # no time passes while the listener closes and opens again
            await twin.power_cycle(slot.meter.serial)
        await asyncio.wait_for(events.get(), GUARD_S)
    await one_charge(clock, slot, drv, make_req())
    await clock.sleep(30)

    report = build_report(attach(slot.host))
    verdicts = {check["id"]: check["verdict"] for check in report["checks"]}
    assert "FAIL" not in verdicts.values(), report
    assert "WARN" not in verdicts.values(), report
    for exercised in (
        "gw_once_per_power_cycle",
        "gw_before_transaction",
        "time_set_before_begin",
        "user_before_begin",
        "end_before_begin",
        "receipt_after_end",
        "reinit_after_power_cycle",
        "meter_time_true",
    ):
        assert verdicts[exercised] == "PASS", (exercised, report)


async def test_bundled_driver_without_a_level_warns_not_billable(
    setup: tuple[SimClock, Twin, MeterSlot, IemDcrDriver],
) -> None:
    clock, _, slot, drv = setup
    await drv.start()
    await wait(drv, "initialised")
    await one_charge(clock, slot, drv, make_req(identification_level=None))
    report = build_report(attach(slot.host))
    verdicts = {check["id"]: check["verdict"] for check in report["checks"]}
    assert verdicts["identification_level"] == "WARN"
    assert "FAIL" not in verdicts.values(), report
