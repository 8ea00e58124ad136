"""``GET /healthz``: 200 when every powered meter listens, else 503 naming those that do not.

Orchestrators probe it by address, so it needs no token and skips the browser guard (routes.py).
"""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.keys import TWIN_KEY


async def healthz(request: web.Request) -> web.StreamResponse:
    twin = request.app[TWIN_KEY]
    down = [s.meter.serial for s in twin.slots.values() if s.meter.powered and not s.listening]
    if down:
        return web.json_response({"ok": False, "not_listening": down}, status=503)
    return web.json_response({"ok": True})
