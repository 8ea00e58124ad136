"""A meter's journal on the control plane: the meter-API requests it saw, with findings; clear it."""

from __future__ import annotations

from aiohttp import web

from iemdcr_twin.simulator.control.body import query_int
from iemdcr_twin.simulator.control.keys import slot_of


async def get_journal(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    since = query_int(request, "since", 0) or 0
    limit = query_int(request, "limit", None)
    entries = slot.host.journal.entries(since, limit)
    return web.json_response(
        {"entries": [entry.as_dict() for entry in entries], "last_seq": slot.host.journal.last_seq}
    )


async def delete_journal(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    slot.host.journal.clear()
    return web.json_response({"cleared": True})
