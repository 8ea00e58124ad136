"""The dashboard (control-api.md §3): one static page and its files, served by the control port.

Plain HTML, CSS and JavaScript from ``simulator/static`` (package data): no build step, no CDN, so a lab that is
offline still has it. The page and its files are public; the page itself asks for the control token when the
API answers 401, and sends it as a bearer header (and as ``?token=`` on the event stream).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from iemdcr_twin.simulator.control.errors import ControlError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_FILES = frozenset(path.name for path in STATIC_DIR.iterdir() if path.is_file())


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def static_file(request: web.Request) -> web.StreamResponse:
    """``GET /static/{path}``: a file of the folder by its name; any other name is 404 ``not_found`` (JSON, like
    every control error: aiohttp's own static route answered a missing file with an empty 404)."""
    name = request.match_info["path"]
    if name not in STATIC_FILES:
        raise ControlError(404, "not_found", f"no dashboard file {name[:100]!r}")
    return web.FileResponse(STATIC_DIR / name)
