"""The simulation clock on the control plane: read it, switch mode and rate, advance virtual time."""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.body import number, only_keys, read_body
from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.control.keys import TWIN_KEY


async def get_clock(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[TWIN_KEY].clock.as_dict())


async def put_clock(request: web.Request) -> web.StreamResponse:
    clock = request.app[TWIN_KEY].clock
    body = await read_body(request)
    only_keys(body, {"mode", "rate"})
    mode = body.get("mode")
    if mode is not None and mode not in ("real", "virtual"):
        raise ControlError(400, "bad_mode", "mode must be real or virtual")
    rate = number(body, "rate", 0, 1_000_000)
    clock.set(mode, rate)
    return web.json_response(clock.as_dict())


async def post_advance(request: web.Request) -> web.StreamResponse:
    clock = request.app[TWIN_KEY].clock
    body = await read_body(request)
    only_keys(body, {"seconds"})
    seconds = number(body, "seconds", 0, 10 * 365 * 86_400)
    if seconds is None or seconds <= 0:
        raise ControlError(400, "bad_value", "seconds must be a number above 0")
    clock.advance(seconds)
    return web.json_response(clock.as_dict())
