"""GET metervalue's fast renderer gives exactly the bytes of ``json.dumps(meter.get_metervalue())``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.meter_api import create_meter_app, metervalue_body
from iemdcr_twin.simulator.model import CATALOGUE, Meter, RamMemory, get_profile
from tests.simulator.helpers import GW, SERIAL, T0, seeded_signer

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
PATH = "/counter/v1/ocmf/metervalue"


def make_meter(clock: SimClock) -> Meter:
    return Meter(get_profile("iem-dcr-125"), SERIAL, clock.now, RamMemory(), seeded_signer())


@settings(max_examples=300, deadline=None)
@given(
    current=st.floats(-200, 200, allow_nan=False),
    voltage=st.floats(-1000, 1000, allow_nan=False),
    seconds=st.floats(0.001, 1e6),
    fault_names=st.sets(st.sampled_from([fault.name for fault in CATALOGUE])),
    written=st.booleans(),
)
def test_renderer_equals_json_dumps(
    current: float, voltage: float, seconds: float, fault_names: set[str], written: bool
) -> None:
    clock = SimClock("virtual", 0, T0)
    meter = make_meter(clock)
    if written:
        meter.post_gw(GW)
    meter.set_load(current, voltage)
    clock.advance(seconds)
    for name in fault_names:
        meter.raise_fault(name)
    expected = json.dumps(meter.get_metervalue(), separators=(",", ":")).encode()
    assert metervalue_body(meter.serial, meter.live_reading()) == expected


async def test_every_change_shows_at_once(aiohttp_client: ClientFactory) -> None:
    clock = SimClock("virtual", 0, T0)
    meter = make_meter(clock)
    client = await aiohttp_client(create_meter_app(MeterHost(meter, clock, Journal())))

    async def read() -> dict[str, Any]:
        response = await client.get(PATH)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        assert body == meter.get_metervalue()
        return body

    first = await read()
    meter.set_load(10.0, 400.0)
    assert (await read())["I"] == 10.0
    meter.raise_fault("tamper_detected")
    assert (await read())["ST"] == "M"
    meter.clear_fault("tamper_detected")
    meter.set_load(0.5, 400.0)
    await client.post("/counter/v1/ocmf/gw", json=GW)
    await client.post("/counter/v1/ocmf/receipt", json={"TX": "B"})
    assert (await read())["XT"] is True
    clock.advance(3600)
    later = await read()
    assert later["RD"][0]["RV"] > first["RD"][0]["RV"]
    assert later["TM"] != first["TM"]
