"""The simulation clock on the control plane: read it, switch mode and rate, advance virtual time."""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.body import read_valid
from iemdcr_twin.simulator.control.keys import TWIN_KEY


async def get_clock(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[TWIN_KEY].clock.as_dict())


async def put_clock(request: web.Request) -> web.StreamResponse:
    clock = request.app[TWIN_KEY].clock
    body = await read_valid(request, "ClockSetting")
    rate = body.get("rate")
    clock.set(body.get("mode"), None if rate is None else float(rate))
    return web.json_response(clock.as_dict())


async def post_advance(request: web.Request) -> web.StreamResponse:
    clock = request.app[TWIN_KEY].clock
    body = await read_valid(request, "Advance")
    clock.advance(float(body["seconds"]))
    return web.json_response(clock.as_dict())
