"""Meters on the control plane: list, full state, load, firmware switches (profile), power (control-api.md §2)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.control.body import read_valid
from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.control.keys import TWIN_KEY, slot_of
from iemdcr_twin.simulator.fleet import MeterSlot


def _float(value: float | None) -> float | None:
    """A number the body's schema accepted (absent or null: None) as a float."""
    return None if value is None else float(value)


def meter_summary(slot: MeterSlot) -> dict[str, Any]:
    """One row of ``GET /api/meters``: serial, model, meter-API url, powered, whether a transaction runs."""
    meter = slot.meter
    return {
        "serial": meter.serial,
        "model": meter.profile.MM,
        "url": slot.url,
        "powered": meter.powered,
        "transaction": meter.transaction is not None,
    }


async def list_meters(request: web.Request) -> web.StreamResponse:
    return web.json_response({"meters": [meter_summary(s) for s in request.app[TWIN_KEY].slots.values()]})


async def get_meter(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    return web.json_response({**view.snapshot(slot.meter), "url": slot.url, "port": slot.port})


async def put_load(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_valid(request, "Load")
    current, voltage = _float(body.get("current_A")), _float(body.get("voltage_V"))
    slot.meter.set_load(current, voltage, _float(body.get("ramp_s")) or 0.0)
    return web.json_response(view.snapshot(slot.meter)["electrical"])


async def patch_profile(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_valid(request, "Switches")
    try:
        slot.meter.set_switches(body)
    except ValueError as exc:
        raise ControlError(400, "bad_switch", str(exc)) from None
    return web.json_response({"switches": slot.meter.switches.as_dict()})


async def post_power(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_valid(request, "Power")
    await request.app[TWIN_KEY].set_power(slot.meter.serial, body["on"])
    return web.json_response({"powered": slot.meter.powered})


async def post_power_cycle(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_valid(request, "PowerCycle", optional=True)
    off_ms = _float(body.get("off_ms")) or 0.0
    await request.app[TWIN_KEY].power_cycle(slot.meter.serial, off_ms / 1000)
    return web.json_response({"powered": slot.meter.powered, "off_ms": off_ms})
