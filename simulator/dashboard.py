"""The dashboard (control-api.md §3): one static page and its files, served by the control port.

Plain HTML, CSS and JavaScript from ``simulator/static`` (package data): no build step, no CDN, so a lab that is
offline still has it. The page and its files are public; the page itself asks for the control token when the
API answers 401, and sends it as a bearer header (and as ``?token=`` on the event stream).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
