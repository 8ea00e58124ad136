"""The control API's route table: every control route in one place (method, path, handler, who may call it).

``add_routes`` registers exactly these; ``ACCESS`` (which routes need no token, take it in the query, or skip
the browser guard) is derived from them for the security middlewares; the OpenAPI catalogue (openapi.py) is
held to this table by tests. A route the table does not list does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from iemdcr_twin.simulator.control import (
    clock,
    conformance,
    dashboard,
    events,
    faults,
    health,
    journal,
    meters,
    metrics,
    network,
    openapi,
    records,
)
from iemdcr_twin.simulator.control.security import RouteAccess

METER = "/api/meters/{serial}"


@dataclass(frozen=True)
class Route:
    """One control route.

    ``public``: no token needed; ``guarded``: the browser guard (Host, Origin, JSON bodies) applies;
    ``query_token``: the token may come as ``?token=`` (EventSource cannot send headers); ``head``: HEAD is
    answered too; ``static``: the folder whose files the handler serves under the path's prefix.
    """

    method: str
    path: str
    handler: Handler
    public: bool = False
    guarded: bool = True
    query_token: bool = False
    head: bool = False
    static: Path | None = None


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", health.healthz, public=True, guarded=False),  # orchestrators probe it by address
    Route("GET", "/", dashboard.index, public=True, head=True),
    Route("GET", "/static/{path}", dashboard.static_file, public=True, head=True, static=dashboard.STATIC_DIR),
    Route("GET", "/metrics", metrics.get_metrics),
    Route("GET", "/api/openapi.json", openapi.get_control_document),
    Route("GET", "/api/openapi-meter.json", openapi.get_meter_document),
    Route("GET", "/api/events", events.get_events, query_token=True),
    Route("GET", "/api/meters", meters.list_meters),
    Route("GET", METER, meters.get_meter),
    Route("PUT", METER + "/load", meters.put_load),
    Route("PATCH", METER + "/profile", meters.patch_profile),
    Route("POST", METER + "/power", meters.post_power),
    Route("POST", METER + "/power-cycle", meters.post_power_cycle),
    Route("PUT", METER + "/registers", records.put_registers),
    Route("GET", "/api/faults", faults.list_faults),
    Route("PUT", METER + "/faults/{name}", faults.put_fault),
    Route("DELETE", METER + "/faults/{name}", faults.delete_fault),
    Route("GET", METER + "/network", network.get_network),
    Route("PUT", METER + "/network", network.put_network),
    Route("DELETE", METER + "/network", network.delete_network),
    Route("GET", METER + "/next-record", records.get_next_record),
    Route("PUT", METER + "/next-record", records.put_next_record),
    Route("DELETE", METER + "/next-record", records.delete_next_record),
    Route("GET", "/api/clock", clock.get_clock),
    Route("PUT", "/api/clock", clock.put_clock),
    Route("POST", "/api/clock/advance", clock.post_advance),
    Route("GET", METER + "/journal", journal.get_journal),
    Route("DELETE", METER + "/journal", journal.delete_journal),
    Route("GET", METER + "/records", records.get_records),
    Route("POST", METER + "/factory-reset", records.post_factory_reset),
    Route("GET", METER + "/conformance", conformance.get_conformance),
)


def _static_prefix(route: Route) -> str:
    return route.path.removesuffix("{path}")


ACCESS = RouteAccess(
    public_get_paths=frozenset(r.path for r in ROUTES if r.public and r.method == "GET" and r.static is None),
    public_get_prefixes=tuple(_static_prefix(r) for r in ROUTES if r.public and r.static is not None),
    query_token_paths=frozenset(r.path for r in ROUTES if r.query_token),
    unguarded_get_paths=frozenset(r.path for r in ROUTES if not r.guarded and r.method == "GET"),
)


def add_routes(app: web.Application) -> None:
    """Register every route of the table on the control app."""
    router = app.router
    for route in ROUTES:
        resource = router.add_resource(route.path)
        if route.head:
            resource.add_route("HEAD", route.handler)
        resource.add_route(route.method, route.handler)
