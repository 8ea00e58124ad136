"""``GET /metrics``: the twin in Prometheus text exposition format (the counters and rendering: prometheus.py)."""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.keys import METRICS_KEY, TWIN_KEY
from iemdcr_twin.simulator.control.prometheus import CONTENT_TYPE


async def get_metrics(request: web.Request) -> web.StreamResponse:
    text = request.app[METRICS_KEY].render(request.app[TWIN_KEY])
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})
