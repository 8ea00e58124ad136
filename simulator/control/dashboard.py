"""The dashboard (control-api.md §3): one static page and its files, served by the control port.

Plain HTML, CSS and JavaScript from ``simulator/static`` (package data): no build step, no CDN, so a lab that is
offline still has it. The page and its files are public; the page itself asks for the control token when the
API answers 401, and sends it as a bearer header (and as ``?token=`` on the event stream).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
