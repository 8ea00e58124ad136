"""``GET /metrics``: the twin in Prometheus text exposition format 0.0.4, written by prometheus_client from the
control app's own registry (the metrics: prometheus.py)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from iemdcr_twin.simulator.control.keys import METRICS_KEY


async def get_metrics(request: web.Request) -> web.StreamResponse:
    body = generate_latest(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
