"""``GET /api/meters/{serial}/conformance``: the report as JSON, or ``?format=text`` for people."""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.conformance.monitor import attach
from iemdcr_twin.simulator.conformance.report import build_report, render_text
from iemdcr_twin.simulator.fleet import Twin


def add_routes(app: web.Application, twin_key: web.AppKey[Twin]) -> None:
    """Register the route and start monitoring every meter the twin has now (later ones on first report)."""
    for slot in app[twin_key].slots.values():
        attach(slot.host)

    async def get_conformance(request: web.Request) -> web.StreamResponse:
        slot = request.app[twin_key].slot(request.match_info["serial"])  # UnknownMeter -> 404 by the middleware
        fmt = request.query.get("format", "json")
        if fmt not in ("json", "text"):
            return web.json_response({"error": "bad_query", "message": "format must be json or text"}, status=400)
        report = build_report(attach(slot.host))
        if fmt == "text":
            return web.Response(text=render_text(report), content_type="text/plain")
        return web.json_response(report)

    app.router.add_get("/api/meters/{serial}/conformance", get_conformance, allow_head=False)
