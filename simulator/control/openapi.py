"""OpenAPI 3.1 documents: the control API (built here) and the meter API (a file shipped with the package).

Client generators and labs read these instead of the Markdown spec. ``CATALOGUE`` describes every control
operation (summary, body and query schemas, error statuses); ``/api/openapi.json`` keeps only those the running
app registered, so the document never describes a route that is not there. Tests hold the catalogue to the
route table (routes.py): the same (method, path) pairs, and the same ``public`` and ``guarded`` flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

METER_DOCUMENT = "meter-api.openapi.json"
SERIAL = {"name": "serial", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^1ISA[0-9]{10}$"}}
FAULT_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
STATIC_PATH = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
ANY_OBJECT: dict[str, Any] = {"type": "object"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
STORAGE_ERROR = {"503": "storage_error: the state directory cannot be written; nothing changed"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: dict[str, Any] | None = None
    body_optional: bool = False
    content_type: str = "application/json"
    query: tuple[dict[str, Any], ...] = ()
    public: bool = False  # no token needed (as in the route table)
    guarded: bool = True  # the browser guard applies: 403 for a foreign Host or Origin (as in the route table)
    errors: dict[str, str] = field(default_factory=dict)


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _num(low: float, high: float) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


NETWORK_RULE = _obj(
    action={"enum": ["delay", "status", "hang", "reset", "malformed", "refuse"]},
    method={"type": "string", "description": "only requests with this HTTP method"},
    path={"type": "string", "description": "fnmatch glob against the request path or the node name"},
    delay_ms=_num(0, 86_400_000),
    status={"type": "integer", "minimum": 200, "maximum": 599},
    count={"type": "integer", "minimum": 1, "description": "spent per applied request; the rule goes at 0"},
    probability=_num(0, 1),
)
NETWORK_RULE["required"] = ["action"]
SERIAL_PATH = "/api/meters/{serial}"

CATALOGUE: tuple[Operation, ...] = (
    Operation(
        "get",
        "/healthz",
        "200 when every powered meter listens, else 503",
        public=True,
        guarded=False,
        errors={"503": "a powered meter is not listening"},
    ),
    Operation("get", "/", "The dashboard page", content_type="text/html", public=True),
    Operation("get", "/static/{path}", "Dashboard assets", content_type="application/octet-stream", public=True),
    Operation("get", "/metrics", "Prometheus text exposition", content_type="text/plain"),
    Operation("get", "/api/openapi.json", "This document"),
    Operation("get", "/api/openapi-meter.json", "OpenAPI document of the meter API"),
    Operation(
        "get",
        "/api/events",
        "Live event stream (Server-Sent Events); takes ?token=",
        content_type="text/event-stream",
        query=(_query("token", {"type": "string"}, "the control token, for EventSource"),),
    ),
    Operation("get", "/api/meters", "Every meter: serial, model, url, powered, transaction"),
    Operation("get", SERIAL_PATH, "Full state of one meter"),
    Operation(
        "put",
        SERIAL_PATH + "/load",
        "Set current and voltage, optionally ramped",
        body=_obj(current_A=_num(-100_000, 100_000), voltage_V=_num(-10_000, 10_000), ramp_s=_num(0, 31_536_000)),
    ),
    Operation("patch", SERIAL_PATH + "/profile", "Change firmware switches (meter-api.md §6)", body=ANY_OBJECT),
    Operation(
        "post",
        SERIAL_PATH + "/power",
        "Power on or off",
        body={**_obj(on={"type": "boolean"}), "required": ["on"]},
        errors=STORAGE_ERROR,
    ),
    Operation(
        "post",
        SERIAL_PATH + "/power-cycle",
        "Off, wait off_ms of simulated time, on",
        body=_obj(off_ms=_num(0, 86_400_000)),
        body_optional=True,
        errors=STORAGE_ERROR,
    ),
    Operation(
        "put",
        SERIAL_PATH + "/registers",
        "Test labs: set the absolute registers (whole mWh, below 10^14), e.g. just below the wrap; 428 during a "
        "transaction",
        body=_obj(
            import_mWh={"type": "integer", "minimum": 0, "maximum": 10**14 - 1},
            export_mWh={"type": "integer", "minimum": 0, "maximum": 10**14 - 1},
        ),
        errors={"428": "transaction_running", **STORAGE_ERROR},
    ),
    Operation("get", "/api/faults", "The meter fault catalogue"),
    Operation(
        "put",
        SERIAL_PATH + "/faults/{name}",
        "Raise a meter fault",
        body=ANY_OBJECT,
        body_optional=True,
        errors={"404": "unknown meter or fault", **STORAGE_ERROR},
    ),
    Operation(
        "delete", SERIAL_PATH + "/faults/{name}", "Clear a meter fault", errors={"404": "unknown meter or fault"}
    ),
    Operation("get", SERIAL_PATH + "/network", "Current network-fault rules and how often each action fired"),
    Operation(
        "put",
        SERIAL_PATH + "/network",
        "Replace the network-fault rules",
        body={
            **_obj(seed={"type": ["integer", "string"]}, rules={"type": "array", "items": NETWORK_RULE}),
            "required": ["rules"],
        },
    ),
    Operation("delete", SERIAL_PATH + "/network", "Clear the network-fault rules (hung requests are let go)"),
    Operation("get", SERIAL_PATH + "/next-record", "The pending faulty-record kind and the known kinds"),
    Operation(
        "put",
        SERIAL_PATH + "/next-record",
        "Make the next signed record faulty (ocmf.md §5)",
        body={**_obj(kind={"type": "string"}), "required": ["kind"]},
    ),
    Operation("delete", SERIAL_PATH + "/next-record", "The next record is healthy again"),
    Operation("get", "/api/clock", "The simulation clock"),
    Operation(
        "put",
        "/api/clock",
        "Switch clock mode and rate",
        body=_obj(mode={"enum": ["real", "virtual"]}, rate=_num(0, 1_000_000)),
    ),
    Operation(
        "post",
        "/api/clock/advance",
        "Jump virtual time forward",
        body={**_obj(seconds={"type": "number", "exclusiveMinimum": 0}), "required": ["seconds"]},
    ),
    Operation(
        "get",
        SERIAL_PATH + "/journal",
        "Meter-API requests seen, with findings",
        query=(
            _query("since", {"type": "integer", "minimum": 0}, "entries after this seq"),
            _query("limit", {"type": "integer", "minimum": 0}, "at most this many"),
        ),
    ),
    Operation("delete", SERIAL_PATH + "/journal", "Clear the journal"),
    Operation(
        "get",
        SERIAL_PATH + "/records",
        "Signed records, newest last; or the S.A.F.E. XML container",
        query=(
            _query("format", {"enum": ["json", "safe-xml"]}, "safe-xml: Transparenzsoftware container"),
            _query("pg", {"type": "string", "pattern": "^T[0-9]+$"}, "only this pagination number"),
            _query("key", {"type": "string"}, "only records of this key fingerprint"),
        ),
        errors={"404": "unknown meter, or no record matches pg/key"},
    ),
    Operation(
        "post",
        SERIAL_PATH + "/factory-reset",
        "A new meter in the same slot; old records archived",
        body=_obj(),
        body_optional=True,
        errors=STORAGE_ERROR,
    ),
    Operation(
        "get",
        SERIAL_PATH + "/conformance",
        "Conformance report of the driver that talked to this meter",
        query=(
            _query("format", {"enum": ["json", "text"]}, "text: a readable rendering"),
            _query(
                "until",
                {"type": "string"},
                "end of the report's window in simulated time (RFC 3339 or seconds since the epoch); default now",
            ),
        ),
    ),
)


def operation_keys(operations: tuple[Operation, ...] = CATALOGUE) -> set[tuple[str, str]]:
    return {(op.method.upper(), op.path) for op in operations}


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route the app registered.

    Left out: HEAD twins of GET, and the meter app's ``*`` routes, which only answer 404/405 for unknown
    paths and methods.
    """
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*"):
            continue
        info = resource.get_info()
        if "prefix" in info:  # a static folder
            path = info["prefix"].rstrip("/") + "/{path}"
        else:
            path = info.get("formatter") or info.get("path") or resource.canonical
        routes.add((route.method, path))
    return routes


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if "{serial}" in op.path:
        params.append(SERIAL)
    if "{name}" in op.path:
        params.append(FAULT_NAME)
    if "{path}" in op.path:
        params.append(STATIC_PATH)
    return params + list(op.query)


def _operation(op: Operation) -> dict[str, Any]:
    ok_schema = {"type": "string"} if op.content_type != "application/json" else ANY_OBJECT
    responses: dict[str, Any] = {"200": {"description": "Success", "content": {op.content_type: {"schema": ok_schema}}}}
    errors = dict(op.errors)
    if "{serial}" in op.path:
        errors.setdefault("404", "unknown meter")
    if op.body is not None or op.query:
        errors.setdefault("400", "bad body or query; the message names the problem")
    if not op.public:
        errors.setdefault("401", "the control token is set and was not given")
    if op.guarded:
        errors.setdefault("403", "host_not_allowed or origin_not_allowed: a foreign Host or Origin header")
    if op.body is not None:
        errors.setdefault("415", "unsupported_media_type: a body that is not application/json")
    for status, text in sorted(errors.items()):
        responses[status] = {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
    data: dict[str, Any] = {
        "operationId": op.method + "".join(part.strip("{}").title() for part in op.path.replace("-", "/").split("/")),
        "summary": op.summary,
        "responses": responses,
    }
    params = _parameters(op)
    if params:
        data["parameters"] = params
    if op.body is not None:
        data["requestBody"] = {"required": not op.body_optional, "content": {"application/json": {"schema": op.body}}}
    if op.public:
        data["security"] = []
    return data


def control_document(routes: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The control API's OpenAPI 3.1 document; with ``routes``, only the operations the app serves."""
    paths: dict[str, dict[str, Any]] = {}
    for op in CATALOGUE:
        if routes is None or (op.method.upper(), op.path) in routes:
            paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "iemdcr-twin control API",
            "version": "1.0.0",
            "description": "Everything a lab, test or dashboard does to the twin (control-api.md). Every success "
            "is 200; every error is a 4xx with a JSON body {error, message}.",
        },
        "servers": [{"url": "http://127.0.0.1:8090"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    }


def meter_document() -> dict[str, Any]:
    """The meter API's document, shipped as package data of ``iemdcr_twin.simulator``."""
    text = resources.files("iemdcr_twin.simulator").joinpath(METER_DOCUMENT).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


async def get_control_document(request: web.Request) -> web.StreamResponse:
    return web.json_response(control_document(app_routes(request.app)))


async def get_meter_document(request: web.Request) -> web.StreamResponse:
    return web.json_response(meter_document())
