"""``GET /api/events``: the live event stream as Server-Sent Events (control-api.md §2; docs/dashboard.md).

The events come from the app's ``EventHub`` (hub.py, no HTTP in it); this module writes them to each client,
one JSON object per ``data:`` line with ``id:`` = ``seq``, a ``hello`` event first and a ``: ping`` comment
when idle. ``hub_context`` and ``close_hub`` are the hub's part of the app's lifecycle (app.py adds them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from aiohttp import web

from iemdcr_twin.simulator.control.hub import Event, EventHub, StreamClosed, Subscription
from iemdcr_twin.simulator.control.keys import EVENTS_KEY, TWIN_KEY
from iemdcr_twin.simulator.fleet import UnknownMeter


def format_sse(event: Event) -> bytes:
    """One Server-Sent Event: ``id: <seq>`` (when the event has one) and ``data: <compact JSON>``."""
    lines = []
    if event.get("seq") is not None:
        lines.append(f"id: {event['seq']}")
    lines.append("data: " + json.dumps(event, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


async def _events(hub: EventHub, subscription: Subscription) -> AsyncIterator[bytes]:
    """SSE chunks: the events of ``subscription`` and a heartbeat comment when idle; ends on hub close."""
    while True:
        try:
            async with asyncio.timeout(hub.heartbeat_s):
                event = await subscription.get()
        except TimeoutError:
            yield b": ping\n\n"
            continue
        except StreamClosed:
            return
        try:
            chunk = format_sse(event)
        except Exception as exc:  # whatever fails to encode, the stream goes on
            chunk = format_sse(hub.unencodable(event, exc))
        yield chunk


async def get_events(request: web.Request) -> web.StreamResponse:
    hub = request.app[EVENTS_KEY]
    twin = request.app[TWIN_KEY]
    serial = request.query.get("serial") or None
    if serial is not None and serial not in twin.slots:
        raise UnknownMeter(serial)
    if hub.closed:
        raise web.HTTPServiceUnavailable(reason="the twin is shutting down")
    with hub.subscribe(serial) as subscription:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache, no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        meters = [serial] if serial else sorted(twin.slots)
        hello = {
            "seq": None,
            "type": "hello",
            "serial": serial,
            "meters": meters,
            "heartbeat_s": hub.heartbeat_s,
            "values_interval_s": hub.values_interval_s,
            "wall_time": time.time(),
        }
        await response.write(b"retry: 2000\n" + format_sse(hello))
        try:
            async for chunk in _events(hub, subscription):
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away; its subscription ends with this handler
    return response


async def hub_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the hub listens to the twin's meters and ticks live values while the app runs."""
    hub = app[EVENTS_KEY]
    hub.attach(app[TWIN_KEY])
    hub.start_ticker()
    yield
    await hub.stop_ticker()
    hub.detach()


async def close_hub(app: web.Application) -> None:
    """``on_shutdown``: end every open stream now, so the server does not wait for them."""
    app[EVENTS_KEY].close()
