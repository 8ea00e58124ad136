"""A meter's network faults on the control plane: read, replace and clear its rules (control-api.md §2).

The rules, their validation and the interceptor that applies them are device side (``network_faults.py``);
this module only carries them over HTTP.
"""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.body import read_body
from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.control.keys import slot_of
from iemdcr_twin.simulator.network_faults import NetworkFaults, RuleError, parse_rules


async def get_network(request: web.Request) -> web.StreamResponse:
    return web.json_response(NetworkFaults.of(slot_of(request).host).as_dict())


async def put_network(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_body(request)
    try:
        seed, rules = parse_rules(body)
    except RuleError as exc:
        raise ControlError(400, exc.code, exc.message) from None
    faults = NetworkFaults.of(slot.host)
    faults.replace(seed, rules)
    return web.json_response(faults.as_dict())


async def delete_network(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    faults = NetworkFaults.of(slot.host)
    faults.clear()
    return web.json_response(faults.as_dict())
