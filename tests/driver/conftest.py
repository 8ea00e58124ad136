"""Fixtures: the one auto-jumping virtual clock, a real twin on it, drivers on both, and the fake meter.

The twin's ``SimClock`` is virtual at rate 0 and jumps to the next pending wake-up whenever nothing happened
for a real millisecond (``tests.support.clock.autojumping``); every driver request holds it while on the wire.
The fake meter (``tests.support.fake_meter``) is only for bodies the twin never sends; it runs on the same clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSlot, MeterSpec, Twin
from tests.support.clock import autojumping, frozen_clock, hold_meter_requests
from tests.support.driver import MakeDriver, new_driver, started
from tests.support.fake_meter import FakeMeter
from tests.support.twin import MakeMeter


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimClock]:
    """The virtual clock at T0, auto-jumping; every driver HTTP request holds it while in flight."""
    sim_clock = frozen_clock()
    hold_meter_requests(monkeypatch, sim_clock)
    async with autojumping(sim_clock):
        yield sim_clock


@pytest.fixture
async def twin(clock: SimClock) -> AsyncIterator[Twin]:
    sim = Twin(clock, seed="driver-against-twin")
    yield sim
    await sim.stop()


@pytest.fixture
def make_meter(twin: Twin) -> MakeMeter:
    """Add one meter (firmware switches as keywords) and start the twin: one call per test."""

    async def make(**switches: Any) -> MeterSlot:
        slot = twin.add_meter(MeterSpec(port=0, switches=switches))
        await twin.start()
        return slot

    return make


@pytest.fixture
async def slot(make_meter: MakeMeter) -> MeterSlot:
    return await make_meter()


@pytest.fixture
async def make_driver(clock: SimClock) -> AsyncIterator[MakeDriver]:
    """Build (not start) drivers on the shared clock (``new_driver``'s settings); all are stopped at the end."""
    drivers: list[IemDcrDriver] = []

    def make(url: str, **settings: Any) -> IemDcrDriver:
        drv = new_driver(url, clock, **settings)
        drivers.append(drv)
        return drv

    yield make
    for drv in drivers:
        await drv.stop()


@pytest.fixture
async def driver(slot: MeterSlot, make_driver: MakeDriver) -> IemDcrDriver:
    """A started driver that finished its first initialisation against ``slot``."""
    return await started(make_driver(slot.url))


@pytest.fixture
def fake_meter(clock: SimClock) -> FakeMeter:
    return FakeMeter(clock=clock)


@pytest.fixture
async def fake_url(fake_meter: FakeMeter, aiohttp_server: Any) -> str:
    server: TestServer = await aiohttp_server(fake_meter.app())
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def fake_driver(fake_url: str, make_driver: MakeDriver) -> IemDcrDriver:
    """A started driver that finished its first initialisation against the fake meter."""
    return await started(make_driver(fake_url))
