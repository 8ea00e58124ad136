"""``GET /api/meters/{serial}/conformance``: the report as JSON, or ``?format=text`` for people.

``?until=`` closes the report's window early (a lab that stopped the driver on purpose): simulated time as
RFC 3339 or seconds since the epoch. A bad value is a 400 ``bad_query`` whose message names ``until``. The
judging is done by the app's ``ConformanceReports`` (keys.py), which the conformance package provides.
"""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.control.keys import REPORTS_KEY, slot_of

FORMATS = ("json", "text")


async def get_conformance(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)  # UnknownMeter -> 404 by the error middleware
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise ControlError(400, "bad_query", "format must be json or text")
    reports = request.app[REPORTS_KEY]
    try:
        report = reports.report(slot.host, request.query.get("until"))
    except ValueError as exc:
        raise ControlError(400, "bad_query", f"until: {exc}") from None
    if fmt == "text":
        return web.Response(text=reports.render_text(report), content_type="text/plain")
    return web.json_response(report)
