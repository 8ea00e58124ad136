"""Helpers for tests that run a Twin behind its control app: JSON checks, meter-port calls, a whole charge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from iemdcr_twin.simulator.model import Meter
from tests.simulator.helpers import GW, T0, USER

S1 = "1ISA0200000001"
S2 = "1ISA0200000002"
V1 = "/counter/v1/ocmf/"
JSON_TYPE = {"Content-Type": "application/json"}  # the control API takes bodies of this type only (415 otherwise)


def new_twin(meters: int = 1, clock: SimClock | None = None, journal_size: int = 100) -> Twin:
    """A seeded twin on a frozen virtual clock (its own unless given), its meters on free ports."""
    twin = Twin(clock or SimClock("virtual", 0, T0), seed="tests", journal_size=journal_size)
    for index in range(meters):
        twin.add_meter(MeterSpec(port=0), index)
    return twin


async def json_ok(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    assert resp.status == 200, raw
    return json.loads(raw)


async def json_error(resp: aiohttp.ClientResponse, status: int, code: str, *words: str) -> dict[str, Any]:
    """A JSON error with this status and code whose message names every one of ``words``."""
    raw = await resp.read()
    assert resp.status == status, raw
    body: dict[str, Any] = json.loads(raw)
    assert body["error"] == code, body
    for word in words:
        assert word in body["message"], (word, body)
    return body


def meter_url(twin: Twin, node: str, serial: str = S1) -> str:
    return twin.slot(serial).url + V1 + node


def charge(meter: Meter, clock: SimClock, seconds: float = 600.0, current: float = 50.0) -> None:
    """One healthy transaction on the model (gw once per power cycle), advancing the simulation clock."""
    if not meter.gw_written:
        meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    meter.post_receipt({"TX": "B"})
    meter.set_load(current, 400.0)
    clock.advance(seconds)
    meter.set_load(0.0)
    meter.post_receipt({"TX": "E"})


async def raw_get(twin: Twin, node: str, serial: str = S1) -> bytes:
    """One GET on its own connection, with no client-side retry: b"" when the twin closed without answering."""
    slot = twin.slot(serial)
    reader, writer = await asyncio.open_connection(slot.bind, slot.port)
    try:
        writer.write(f"GET {V1}{node} HTTP/1.1\r\nHost: meter\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""
    finally:
        writer.close()


async def until(predicate: Callable[[], bool], limit_s: float = 60.0) -> None:
    """Let the event loop finish work it does on its own (a request reaching its wait, a background task, a
    browser's click), polling every 2 ms.

    ``limit_s`` is only a guard against a hang, never a measure of speed: it is generous, so that a loaded
    machine cannot make the test fail."""
    for _ in range(round(limit_s / 0.002)):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")
