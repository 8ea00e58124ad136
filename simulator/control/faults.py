"""Meter faults on the control plane: the catalogue, raise and clear one on a meter (control-api.md §2)."""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.body import read_valid
from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.control.keys import slot_of
from iemdcr_twin.simulator.model import CATALOGUE
from iemdcr_twin.simulator.model.faults import BY_NAME


async def list_faults(request: web.Request) -> web.StreamResponse:
    return web.json_response({"faults": [fault.as_dict() for fault in CATALOGUE]})


def _fault_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if name not in BY_NAME:
        raise ControlError(404, "unknown_fault", f"no fault named {name[:60]!r}", known=list(BY_NAME))
    return name


async def put_fault(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    name = _fault_name(request)
    await read_valid(request, "Fault", optional=True)
    slot.meter.raise_fault(name)
    return web.json_response({"faults": sorted(slot.meter.faults)})


async def delete_fault(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    name = _fault_name(request)
    slot.meter.clear_fault(name)
    return web.json_response({"faults": sorted(slot.meter.faults)})
