"""``GET /api/meters/{serial}/conformance``: the report as JSON, or ``?format=text`` for people.

``?until=`` closes the report's window early (a lab that stopped the driver on purpose): simulated time as
RFC 3339 or seconds since the epoch. A bad value is a 400 ``bad_query`` whose message names ``until``.
"""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.conformance.monitor import WindowError, attach
from iemdcr_twin.simulator.conformance.report import build_report, parse_until, render_text
from iemdcr_twin.simulator.fleet import Twin


def _bad_query(message: str) -> web.Response:
    return web.json_response({"error": "bad_query", "message": message}, status=400)


def add_routes(app: web.Application, twin_key: web.AppKey[Twin]) -> None:
    """Register the route and start monitoring every meter the twin has now (later ones on first report)."""
    for slot in app[twin_key].slots.values():
        attach(slot.host)

    async def get_conformance(request: web.Request) -> web.StreamResponse:
        slot = request.app[twin_key].slot(request.match_info["serial"])  # UnknownMeter -> 404 by the middleware
        fmt = request.query.get("format", "json")
        if fmt not in ("json", "text"):
            return _bad_query("format must be json or text")
        until = None
        if "until" in request.query:
            try:
                until = parse_until(request.query["until"])
            except ValueError as exc:
                return _bad_query(f"until: {exc}")
        try:
            report = build_report(attach(slot.host), until)
        except WindowError as exc:
            return _bad_query(f"until: {exc}")
        if fmt == "text":
            return web.Response(text=render_text(report), content_type="text/plain")
        return web.json_response(report)

    app.router.add_get("/api/meters/{serial}/conformance", get_conformance, allow_head=False)
