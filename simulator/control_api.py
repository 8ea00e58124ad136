"""The control plane: what tests, scenarios, labs and the dashboard do to the twin (control-api.md §2).

Kept apart from device traffic on its own port. Every success is 200 with JSON; every error is a 4xx (or 503
``storage_error`` when a change cannot be saved) with ``{"error": code, "message": text}`` and the twin unchanged.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator import dashboard, events, meter_view
from iemdcr_twin.simulator.clock import ClockError
from iemdcr_twin.simulator.conformance import routes as conformance_routes
from iemdcr_twin.simulator.fleet import MeterSlot, Twin, UnknownMeter
from iemdcr_twin.simulator.json_depth import MAX_JSON_DEPTH, nesting_exceeds
from iemdcr_twin.simulator.model import CATALOGUE, Refusal
from iemdcr_twin.simulator.model.faults import BY_NAME

log = logging.getLogger("iemdcr.control")
TWIN_KEY = web.AppKey("twin", Twin)
MAX_CONTROL_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    """A refused control request."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON 4xx (503 ``storage_error`` on a failed write); an unexpected bug is a
    logged 500 without a traceback."""
    try:
        return await handler(request)
    except ControlError as exc:
        return _error(exc.status, exc.code, exc.message, **exc.extra)
    except UnknownMeter as exc:
        return _error(404, "unknown_meter", f"no meter with serial {exc.args[0]!r}")
    except ClockError as exc:
        return _error(400, exc.code, str(exc))
    except Refusal as exc:  # the model refused, nothing changed; StorageError: 503 storage_error (control-api.md §2)
        return _error(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status == 404:
            return _error(404, "not_found", f"no control route at {request.path[:100]}")
        if exc.status == 405:
            return _error(405, "method_not_allowed", f"{request.method} is not allowed on {request.path[:100]}")
        if exc.status == 413:
            return _error(413, "body_too_large", f"the body is larger than {MAX_CONTROL_BODY} bytes")
        return _error(exc.status, "http_error", exc.reason)
    except Exception:
        log.exception("control request %s %s failed", request.method, request.path)
        return _error(500, "internal_error", "the twin failed to handle this request; see its log")


# ---- body helpers ----------------------------------------------------------------------------------------


async def read_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # e.g. a Content-Encoding the body does not match
        raise ControlError(400, "bad_json", "the body could not be decoded") from None
    except (ConnectionResetError, RuntimeError):  # the client left mid-body (aiohttp: "Connection closed.")
        raise ControlError(400, "incomplete_body", "the connection closed before the body arrived") from None
    if not raw.strip() and optional:
        return {}
    if nesting_exceeds(raw):
        raise ControlError(
            400, "bad_json", f"the body must be a JSON object nested at most {MAX_JSON_DEPTH} levels deep"
        )
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise ControlError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "bad_json", "the body must be a JSON object")
    return body


def number(body: dict[str, Any], key: str, low: float, high: float, default: float | None = None) -> float | None:
    if key not in body or body[key] is None:
        return default
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError(400, "bad_type", f"{key} must be a number")
    if not low <= value <= high:
        raise ControlError(400, "bad_value", f"{key} must be from {low:g} to {high:g}")
    return float(value)


def only_keys(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlError(400, "unknown_key", f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def slot_of(request: web.Request) -> MeterSlot:
    return request.app[TWIN_KEY].slot(request.match_info["serial"])


# ---- handlers ----------------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.StreamResponse:
    twin = request.app[TWIN_KEY]
    down = [s.meter.serial for s in twin.slots.values() if s.meter.powered and not s.listening]
    if down:
        return web.json_response({"ok": False, "not_listening": down}, status=503)
    return web.json_response({"ok": True})


def meter_summary(slot: MeterSlot) -> dict[str, Any]:
    meter = slot.meter
    return {
        "serial": meter.serial,
        "model": meter.profile.MM,
        "url": slot.url,
        "powered": meter.powered,
        "transaction": meter.transaction is not None,
    }


async def list_meters(request: web.Request) -> web.StreamResponse:
    return web.json_response({"meters": [meter_summary(s) for s in request.app[TWIN_KEY].slots.values()]})


async def get_meter(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    return web.json_response({**meter_view.snapshot(slot.meter), "url": slot.url, "port": slot.port})


async def put_load(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_body(request)
    only_keys(body, {"current_A", "voltage_V", "ramp_s"})
    current = number(body, "current_A", -100_000, 100_000)
    voltage = number(body, "voltage_V", -10_000, 10_000)
    ramp = number(body, "ramp_s", 0, 86_400 * 365, 0.0) or 0.0
    slot.meter.set_load(current, voltage, ramp)
    return web.json_response(meter_view.snapshot(slot.meter)["electrical"])


async def patch_profile(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_body(request)
    try:
        slot.meter.set_switches(body)
    except ValueError as exc:
        raise ControlError(400, "bad_switch", str(exc)) from None
    return web.json_response({"switches": slot.meter.switches.as_dict()})


async def post_power(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_body(request)
    only_keys(body, {"on"})
    if not isinstance(body.get("on"), bool):
        raise ControlError(400, "bad_type", "on must be true or false")
    await request.app[TWIN_KEY].set_power(slot.meter.serial, body["on"])
    return web.json_response({"powered": slot.meter.powered})


async def post_power_cycle(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    body = await read_body(request, optional=True)
    only_keys(body, {"off_ms"})
    off_ms = number(body, "off_ms", 0, 86_400_000, 0.0) or 0.0
    await request.app[TWIN_KEY].power_cycle(slot.meter.serial, off_ms / 1000)
    return web.json_response({"powered": slot.meter.powered, "off_ms": off_ms})


async def put_registers(request: web.Request) -> web.StreamResponse:
    """Test labs: start the absolute registers anywhere, e.g. just below the wrap (docs/persistence.md)."""
    slot = slot_of(request)
    body = await read_body(request)
    only_keys(body, {"import_mWh", "export_mWh"})
    slot.meter.set_registers(body.get("import_mWh"), body.get("export_mWh"))
    return web.json_response(meter_view.snapshot(slot.meter)["registers"])


async def list_faults(request: web.Request) -> web.StreamResponse:
    return web.json_response({"faults": [fault.as_dict() for fault in CATALOGUE]})


def _fault_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if name not in BY_NAME:
        raise ControlError(404, "unknown_fault", f"no fault named {name[:60]!r}", known=list(BY_NAME))
    return name


async def put_fault(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    name = _fault_name(request)
    await read_body(request, optional=True)
    slot.meter.raise_fault(name)
    return web.json_response({"faults": sorted(slot.meter.faults)})


async def delete_fault(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    name = _fault_name(request)
    slot.meter.clear_fault(name)
    return web.json_response({"faults": sorted(slot.meter.faults)})


async def get_clock(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[TWIN_KEY].clock.as_dict())


async def put_clock(request: web.Request) -> web.StreamResponse:
    clock = request.app[TWIN_KEY].clock
    body = await read_body(request)
    only_keys(body, {"mode", "rate"})
    mode = body.get("mode")
    if mode is not None and mode not in ("real", "virtual"):
        raise ControlError(400, "bad_mode", "mode must be real or virtual")
    rate = number(body, "rate", 0, 1_000_000)
    clock.set(mode, rate)
    return web.json_response(clock.as_dict())


async def post_advance(request: web.Request) -> web.StreamResponse:
    clock = request.app[TWIN_KEY].clock
    body = await read_body(request)
    only_keys(body, {"seconds"})
    seconds = number(body, "seconds", 0, 10 * 365 * 86_400)
    if seconds is None or seconds <= 0:
        raise ControlError(400, "bad_value", "seconds must be a number above 0")
    clock.advance(seconds)
    return web.json_response(clock.as_dict())


def _query_int(request: web.Request, key: str, default: int | None) -> int | None:
    raw = request.query.get(key)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # int() alone takes Unicode digits, " ", "_", "+"
        raise ControlError(400, "bad_query", f"{key} must be a whole number >= 0 in ASCII digits, got {raw[:20]!r}")
    return int(raw)


async def get_journal(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    since = _query_int(request, "since", 0) or 0
    limit = _query_int(request, "limit", None)
    entries = slot.host.journal.entries(since, limit)
    return web.json_response(
        {"entries": [entry.as_dict() for entry in entries], "last_seq": slot.host.journal.last_seq}
    )


async def delete_journal(request: web.Request) -> web.StreamResponse:
    slot = slot_of(request)
    slot.host.journal.clear()
    return web.json_response({"cleared": True})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz, allow_head=False)
    r.add_get("/api/meters", list_meters, allow_head=False)
    r.add_get("/api/meters/{serial}", get_meter, allow_head=False)
    r.add_put("/api/meters/{serial}/load", put_load)
    r.add_patch("/api/meters/{serial}/profile", patch_profile)
    r.add_post("/api/meters/{serial}/power", post_power)
    r.add_post("/api/meters/{serial}/power-cycle", post_power_cycle)
    r.add_put("/api/meters/{serial}/registers", put_registers)
    r.add_get("/api/faults", list_faults, allow_head=False)
    r.add_put("/api/meters/{serial}/faults/{name}", put_fault)
    r.add_delete("/api/meters/{serial}/faults/{name}", delete_fault)
    r.add_get("/api/clock", get_clock, allow_head=False)
    r.add_put("/api/clock", put_clock)
    r.add_post("/api/clock/advance", post_advance)
    r.add_get("/api/meters/{serial}/journal", get_journal, allow_head=False)
    r.add_delete("/api/meters/{serial}/journal", delete_journal)
    events.add_routes(app)
    dashboard.add_routes(app)


def create_control_app(
    twin: Twin,
    *,
    token: str | None = None,
    allow_hosts: Iterable[str] = (),
    allow_origins: Iterable[str] = (),
) -> web.Application:
    """The control app for one twin (its meters are started and stopped with the app).

    With ``token``, every control request but the public ones needs ``Authorization: Bearer <token>``. A
    ``Host`` other than loopback, ``twin.bind`` and ``allow_hosts`` (``"*"``: any), an ``Origin`` other than
    the app's own and ``allow_origins``, and a body that is not JSON are refused (security.BrowserGuard).
    """
    # These modules build on this one's helpers, so they are imported here rather than at the top.
    from iemdcr_twin.simulator import control_records, metrics, network, openapi, security

    guard = security.BrowserGuard.for_bind(twin.bind, allow_hosts, allow_origins)
    middlewares = [error_middleware, security.browser_guard_middleware(guard)]
    if token:
        middlewares.append(security.token_middleware(token))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_CONTROL_BODY)
    app[TWIN_KEY] = twin
    add_routes(app)
    network.add_routes(app)
    control_records.add_routes(app)
    metrics.add_routes(app, twin)
    openapi.add_routes(app)
    conformance_routes.add_routes(app, TWIN_KEY)

    async def twin_lifecycle(app: web.Application) -> Any:
        await twin.start()
        yield
        await twin.stop()

    app.cleanup_ctx.append(twin_lifecycle)
    return app
