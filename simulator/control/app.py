"""The control app factory: its state (keys.py), middlewares, the route table, and the lifecycles of the twin
and the event hub (``cleanup_ctx``). Kept apart from device traffic on its own port (control-api.md §2).

Conformance reports come in as a ``ConformanceReports`` (keys.py): this package imports nothing above it, and
``simulator/app.py`` plugs in the conformance package's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from iemdcr_twin.simulator.control import events, routes, security
from iemdcr_twin.simulator.control.errors import MAX_CONTROL_BODY, error_middleware
from iemdcr_twin.simulator.control.hub import EventHub
from iemdcr_twin.simulator.control.keys import EVENTS_KEY, METRICS_KEY, REPORTS_KEY, TWIN_KEY, ConformanceReports
from iemdcr_twin.simulator.control.prometheus import Metrics
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.limits import BODY_TIMEOUT_KEY


async def twin_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the twin's meters listen while the app runs."""
    twin = app[TWIN_KEY]
    await twin.start()
    yield
    await twin.stop()


def build_control_app(
    twin: Twin,
    reports: ConformanceReports,
    *,
    token: str | None = None,
    allow_hosts: Iterable[str] = (),
    allow_origins: Iterable[str] = (),
) -> web.Application:
    """The control app for one twin (its meters are started and stopped with the app).

    ``reports`` judges drivers for the conformance route; every meter the twin has now is watched from here on
    (later ones on their first report). With ``token``, every control request but the public ones needs
    ``Authorization: Bearer <token>``. A ``Host`` other than loopback, ``twin.bind`` and ``allow_hosts``
    (``"*"``: any), an ``Origin`` other than the app's own and ``allow_origins``, and a body that is not JSON
    are refused (security.BrowserGuard). A request body still incomplete after ``twin.idle_timeout_s`` gets 408
    ``request_timeout`` and its connection is closed (limits.read_body).
    """
    guard = security.BrowserGuard.for_bind(twin.bind, allow_hosts, allow_origins)
    middlewares: list[Middleware] = [error_middleware, security.browser_guard_middleware(guard, routes.ACCESS)]
    if token:
        middlewares.append(security.token_middleware(token, routes.ACCESS))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_CONTROL_BODY)
    app[TWIN_KEY] = twin
    app[BODY_TIMEOUT_KEY] = twin.idle_timeout_s  # a body still incomplete then gets 408 (control/body.py)
    app[EVENTS_KEY] = EventHub()
    app[METRICS_KEY] = metrics = Metrics(twin)
    app[REPORTS_KEY] = reports
    routes.add_routes(app)
    metrics.hook()  # journal listeners in this order: metrics, conformance, then the hub (at startup)
    for slot in twin.slots.values():
        reports.watch(slot.host)
    app.cleanup_ctx.append(events.hub_context)
    app.on_shutdown.append(events.close_hub)
    app.cleanup_ctx.append(twin_context)
    return app
