"""GET metervalue's one renderer: its bytes parse to meter-api.md §4's keys, order and types, with the reading's
values, and are the compact JSON of what they parse to."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.meter_api import create_meter_app, metervalue_body
from iemdcr_twin.simulator.model import CATALOGUE
from iemdcr_twin.simulator.model.energy import format_kwh
from tests.support.clock import frozen_clock
from tests.support.meter import GW, SERIAL, make_meter, metervalue

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
PATH = "/counter/v1/ocmf/metervalue"
# meter-api.md §4: the keys in this order, RD by position.
KEYS = ["MS", "TM", "EF", "ST", "XT", "RD", "U1", "U2", "U3", "U4", "I", "P", "XS", "XC"]
RD_ROWS = [
    ("RV", {"RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"}),
    ("RV", {"RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"}),
    ("WV", {"WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"}),
    ("WV", {"WI": "transaction_1-b:2.8.e", "WU": "kWh", "WT": "DC"}),
]
KWH = re.compile(r"[0-9]{8}\.[0-9]{3}")
XS = re.compile(r"0x[0-9A-F]{16}")
XC = re.compile(r"0x[0-9A-F]{4}, 0x[0-9A-F]{8}, 0x[0-9A-F]{2}, 0x[0-9A-F]{2}")
TM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}[+-][0-9]{4} [UIS]")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@settings(max_examples=300, deadline=None)
@given(
    current=st.floats(-200, 200, allow_nan=False),
    voltage=st.floats(-1000, 1000, allow_nan=False),
    seconds=st.floats(0.001, 1e6),
    fault_names=st.sets(st.sampled_from([fault.name for fault in CATALOGUE])),
    written=st.booleans(),
)
def test_renderer_gives_the_spec_shape_with_the_readings_values(
    current: float, voltage: float, seconds: float, fault_names: set[str], written: bool
) -> None:
    clock = frozen_clock()
    meter = make_meter(clock.now)
    if written:
        meter.post_gw(GW)
    meter.set_load(current, voltage)
    clock.advance(seconds)
    for name in fault_names:
        meter.raise_fault(name)
    reading = meter.live_reading()
    raw = metervalue_body(reading)
    body = json.loads(raw)
    assert json.dumps(body, separators=(",", ":")).encode() == raw  # compact JSON, nothing json would not write
    assert list(body) == KEYS
    assert body["MS"] == SERIAL
    assert isinstance(body["TM"], str) and TM.fullmatch(body["TM"]) and body["TM"] == reading.TM
    assert (body["EF"], body["ST"]) == (reading.EF, reading.ST) and all(isinstance(body[k], str) for k in ("EF", "ST"))
    assert body["XT"] is reading.XT
    assert isinstance(body["RD"], list) and len(body["RD"]) == 4
    for row, (value_key, fixed) in zip(body["RD"], RD_ROWS, strict=True):
        assert list(row) == [value_key, *fixed] and {k: row[k] for k in fixed} == fixed
        assert isinstance(row[value_key], str) and KWH.fullmatch(row[value_key])
    registers = (reading.import_mwh, reading.export_mwh, reading.tx_import_mwh, reading.tx_export_mwh)
    assert [row[key] for row, (key, _) in zip(body["RD"], RD_ROWS, strict=True)] == [format_kwh(r) for r in registers]
    assert all(is_number(body[key]) for key in ("U1", "U2", "U3", "U4", "I", "P"))
    assert (body["U3"], body["U4"]) == (0, 0)
    assert body["I"] == round(reading.current_A, 3) and body["U2"] == round(reading.voltage_V, 3)
    assert body["P"] == round(reading.current_A * reading.voltage_V, 3)
    assert body["U1"] == round(reading.current_A * 0.0001, 6)
    assert isinstance(body["XS"], str) and XS.fullmatch(body["XS"]) and int(body["XS"], 16) == reading.XS
    assert isinstance(body["XC"], str) and XC.fullmatch(body["XC"]) and body["XC"] == reading.XC


async def test_every_change_shows_at_once(aiohttp_client: ClientFactory) -> None:
    clock = frozen_clock()
    meter = make_meter(clock.now)
    client = await aiohttp_client(create_meter_app(MeterHost(meter, clock, Journal())))

    async def read() -> dict[str, Any]:
        response = await client.get(PATH)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        assert body == metervalue(meter)
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
