"""Fixtures: a virtual clock, a fake meter served on loopback, and a driver wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from iemdcr_twin.driver.client import HttpResponse, MeterHttpClient
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.driver import IemDcrDriver

from .fake_meter import FakeMeter
from .vclock import VirtualClock

MakeDriver = Callable[..., Awaitable[IemDcrDriver]]


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VirtualClock]:
    """A virtual clock that holds still while any driver HTTP request is in flight."""
    vclock = VirtualClock()
    original = MeterHttpClient.request

    async def tracked(self: MeterHttpClient, *args: Any, **kwargs: Any) -> HttpResponse:
        with vclock.busy():
            return await original(self, *args, **kwargs)

    monkeypatch.setattr(MeterHttpClient, "request", tracked)
    yield vclock
    await vclock.aclose()


@pytest.fixture
def meter(clock: VirtualClock) -> FakeMeter:
    return FakeMeter(clock=clock)


@pytest.fixture
async def meter_url(meter: FakeMeter, aiohttp_server: Any) -> str:
    server: TestServer = await aiohttp_server(meter.app())
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def make_driver(meter_url: str, clock: VirtualClock) -> AsyncIterator[MakeDriver]:
    """Build (not start) drivers against the fake meter; all are stopped at the end of the test."""
    drivers: list[IemDcrDriver] = []

    async def make(**settings: Any) -> IemDcrDriver:
        settings.setdefault("request_timeout_s", 0.5)
        settings.setdefault("timezone_handle_DST", False)
        config = DriverConfig.from_url(meter_url, clock=clock, **settings)
        drv = IemDcrDriver(config)
        drivers.append(drv)
        return drv

    yield make
    for drv in drivers:
        await drv.stop()


@pytest.fixture
async def driver(make_driver: MakeDriver) -> IemDcrDriver:
    """A started driver that has finished its first initialisation."""
    drv = await make_driver()
    await drv.start()
    await drv.wait_for("initialised")
    return drv
