"""GET metervalue reuses its rendered body only while nothing it shows can have changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from simulator.clock import SimClock
from simulator.host import MeterHost
from simulator.journal import Journal
from simulator.meter_api import create_meter_app
from simulator.model import Meter, RamMemory, get_profile
from tests.simulator.helpers import GW, SERIAL, T0, seeded_signer

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
PATH = "/counter/v1/ocmf/metervalue"


async def test_every_change_shows_at_once_within_one_millisecond(aiohttp_client: ClientFactory) -> None:
    clock = SimClock("virtual", 0, T0)
    meter = Meter(get_profile("iem-dcr-125"), SERIAL, clock.now, RamMemory(), seeded_signer())
    client = await aiohttp_client(create_meter_app(MeterHost(meter, clock, Journal())))

    async def read() -> dict[str, Any]:
        response = await client.get(PATH)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        assert body == meter.get_metervalue()
        return body

    first = await read()
    assert await read() == first
    meter.set_load(10.0, 400.0)
    assert (await read())["I"] == 10.0
    meter.raise_fault("tamper_detected")
    assert (await read())["ST"] != first["ST"]
    meter.clear_fault("tamper_detected")
    meter.set_load(0.5, 400.0)
    await client.post("/counter/v1/ocmf/gw", json=GW)
    await client.post("/counter/v1/ocmf/receipt", json={"TX": "B"})
    assert (await read())["XT"] is True
    clock.advance(3600)
    later = await read()
    assert later["RD"][0]["RV"] > first["RD"][0]["RV"]
    assert later["TM"] != first["TM"]
