"""OpenAPI 3.1 documents: the control API's (generated here) and the meter API's (a file shipped with the package).

Client generators and labs read these instead of the Markdown spec. ``CATALOGUE`` describes every control
operation (summary, body, queries, answers); request bodies are the JSON Schemas the server validates with
(``simulator/schemas.py``, ``CONTROL_BODIES``) and every answer has a schema of its own (``RESPONSES``).
``/api/openapi.json`` keeps only the operations the running app registered, so the document never describes a
route that is not there, and names the address the control API is bound to; ``/api/openapi-meter.json`` names
each meter's port. Tests hold the catalogue to the route table (routes.py): the same (method, path) pairs,
and the same ``public`` and ``guarded`` flags.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator import schemas
from iemdcr_twin.simulator.control.keys import TWIN_KEY
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS

METER_DOCUMENT = "meter-api.openapi.json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


SERIAL_SCHEMA: Schema = {"type": "string", "pattern": schemas.SERIAL_PATTERN}
SERIAL = _path_param("serial", SERIAL_SCHEMA, "the meter's serial (MS)")
FAULT_NAME = _path_param("name", {"enum": list(schemas.FAULT_NAMES)}, "a fault of GET /api/faults")
STATIC_PATH = _path_param("path", {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}, "a file of the dashboard")
STORAGE_ERROR = {"503": "storage_error: the state directory cannot be written; nothing changed"}
DAMAGED_RECORD = "storage_error: a record file of the state directory cannot be read (the message names it)"
STATIC_TYPES = ("text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml")


def _obj(required: bool = True, **properties: Any) -> Schema:
    """An answer object: these keys, all present unless ``required`` is False (more may be added later)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(properties)
    return schema


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _map(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
HEX: Schema = {"type": "string", "pattern": "^[0-9a-f]+$"}
KWH: Schema = {"type": "string", "pattern": "^[0-9]{8}\\.[0-9]{3}$", "description": "kWh as the meter shows it"}
USER: Schema = _obj(
    False,
    IS=BOOLEAN,
    IL=STRING,
    IF={"type": "array", "items": STRING},
    IT=STRING,
    ID=STRING,
    US=BOOLEAN,
    TT={**STRING, "description": "when the user block carried one"},
) | {"required": ["IS", "IL", "IF", "IT", "ID", "US"]}
ENTRY: Schema = _obj(
    seq=INTEGER,
    sim_time=NUMBER,
    wall_time=NUMBER,
    method=STRING,
    path=STRING,
    body={"description": "the JSON body as received (null for GET, a text excerpt when it was no JSON)"},
    status={"type": "integer", "description": "0: the connection was closed without an answer"},
    error={"type": ["string", "null"]},
    latency_ms=NUMBER,
    findings={"type": "array", "items": STRING},
)
EVIDENCE_ENTRY: Schema = _obj(
    seq=INTEGER,
    sim_time=NUMBER,
    method=STRING,
    path=STRING,
    body={"description": 'the body as received, a text longer than 300 characters cut with "..."'},
    status=ENTRY["properties"]["status"],
    error={"type": ["string", "null"]},
) | {"description": "the journal entry a finding points at, as the report keeps it (no wall_time or latency_ms)"}
VERDICT: Schema = {"enum": ["PASS", "WARN", "FAIL", "NOT_EXERCISED"]}
FINDING: Schema = _obj(
    False,
    check=STRING,
    code=STRING,
    verdict=VERDICT,
    message=STRING,
    sim_time=NUMBER,
    seq={"type": ["integer", "null"]},
    entry=_nullable(_ref("EvidenceEntry")),
    detail=_map({}),
) | {"required": ["check", "code", "verdict", "message", "sim_time", "seq", "entry"]}

RESPONSES: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "a stable code, e.g. bad_value"},
            "message": {"type": "string", "description": "names the problem (the key, the value)"},
            "known": {"type": "array", "items": STRING, "description": "the names that would have been accepted"},
        },
    },
    "Health": _obj(
        False, ok=BOOLEAN, not_listening={"type": "array", "items": SERIAL_SCHEMA, "description": "when ok is false"}
    )
    | {"required": ["ok"]},
    "OpenApiDocument": _obj(
        False,
        openapi={"type": "string", "pattern": "^3\\.1\\."},
        info=_map({}),
        servers={"type": "array"},
        paths=_map({}),
    )
    | {"required": ["openapi", "info", "paths"]},
    "MeterSummary": _obj(
        serial=SERIAL_SCHEMA,
        model=STRING,
        url={**STRING, "description": "the meter API's base URL"},
        powered=BOOLEAN,
        transaction=BOOLEAN,
    ),
    "MeterList": _obj(meters={"type": "array", "items": _ref("MeterSummary")}),
    "Electrical": _obj(
        current_A=NUMBER,
        voltage_V=NUMBER,
        power_W=NUMBER,
        target_current_A=NUMBER,
        target_voltage_V=NUMBER,
        ramp_until={**NUMBER, "description": "simulated epoch seconds when the ramp ends"},
    ),
    "RegisterValues": _obj(
        import_mWh=INTEGER,
        export_mWh=INTEGER,
        import_kWh=KWH,
        export_kWh=KWH,
        transaction_import_mWh=INTEGER,
        transaction_export_mWh=INTEGER,
    ),
    "SwitchValues": {**schemas.public(schemas.SWITCHES), "required": list(schemas.SWITCH_PROPERTIES)},
    "MeterState": _obj(
        serial=SERIAL_SCHEMA,
        profile=STRING,
        model=STRING,
        firmware=STRING,
        rated_current_A=NUMBER,
        public_key=HEX,
        fingerprint=HEX,
        switches=_ref("SwitchValues"),
        powered=BOOLEAN,
        clock=_obj(time={"type": ["string", "null"]}, offset_minutes=INTEGER, status={"enum": ["U", "I", "S"]}),
        gw=_obj(written=BOOLEAN, CT=STRING, CI=STRING),
        user=_nullable(USER),
        tariff=STRING,
        display={"type": "array", "items": STRING},
        electrical=_ref("Electrical"),
        registers=_ref("RegisterValues"),
        transaction=_nullable(_obj(begin=STRING, begin_RV=STRING, ID=STRING)),
        pagination=_obj(next=INTEGER),
        status=_obj(ST=STRING, EF=STRING, XC=STRING, XS={"type": "string", "pattern": "^0x[0-9A-F]{16}$"}),
        faults={"type": "array", "items": {"enum": list(schemas.FAULT_NAMES)}},
        next_record_fault={"enum": [*FAULTY_RECORD_KINDS, None]},
        counters=_map(INTEGER),
        url=STRING,
        port=INTEGER,
    ),
    "Switched": _obj(switches=_ref("SwitchValues")),
    "Powered": _obj(powered=BOOLEAN),
    "PowerCycled": _obj(powered=BOOLEAN, off_ms=NUMBER),
    "FaultCatalogue": _obj(
        faults={
            "type": "array",
            "items": _obj(
                name={"enum": list(schemas.FAULT_NAMES)},
                description=STRING,
                XC=STRING,
                ST=STRING,
                EF=STRING,
                blocks_receipts=BOOLEAN,
                mid_transaction=STRING,
            ),
        }
    ),
    "ActiveFaults": _obj(faults={"type": "array", "items": {"enum": list(schemas.FAULT_NAMES)}}),
    "NetworkState": _obj(
        seed={"type": ["integer", "string"]},
        rules={"type": "array", "items": schemas.public(schemas.NETWORK_RULE)},
        fired={
            "type": "object",
            "properties": {action: INTEGER for action in schemas.NETWORK_ACTIONS},
            "required": list(schemas.NETWORK_ACTIONS),
        },
    ),
    "NextRecordState": _obj(
        next_record_fault={"enum": [*FAULTY_RECORD_KINDS, None]},
        kinds={"type": "object", "properties": {kind: STRING for kind in FAULTY_RECORD_KINDS}},
    ),
    "Clock": _obj(
        mode={"enum": ["real", "virtual"]},
        rate=NUMBER,
        now={**NUMBER, "description": "simulated epoch seconds"},
        pending_sleepers=INTEGER,
    ),
    "JournalEntry": ENTRY,
    "EvidenceEntry": EVIDENCE_ENTRY,
    "Journal": _obj(entries={"type": "array", "items": _ref("JournalEntry")}, last_seq=INTEGER),
    "Cleared": _obj(cleared={"const": True}),
    "Record": _obj(
        PG={"type": "string", "pattern": "^T[0-9]+$"},
        pagination=INTEGER,
        reason=STRING,
        begin=_obj(TM=STRING, RV=STRING),
        end=_obj(TM=STRING, RV=STRING),
        fingerprint=HEX,
        public_key={"type": ["string", "null"], "description": "hex DER of the key that signed, when known"},
        archived={**BOOLEAN, "description": "signed by a key from before a factory reset"},
        ocmf={"type": "string", "pattern": "^OCMF\\|"},
    ),
    "Records": _obj(serial=SERIAL_SCHEMA, fingerprint=HEX, records={"type": "array", "items": _ref("Record")}),
    "FactoryResetResult": _obj(
        serial=SERIAL_SCHEMA,
        fingerprint=HEX,
        public_key=HEX,
        previous_fingerprint=HEX,
        archived_records=INTEGER,
        pagination=_obj(next=INTEGER),
    ),
    "ConformanceReport": _obj(
        format={"const": "iemdcr-conformance/1"},
        meter=_obj(serial=SERIAL_SCHEMA, model=STRING, firmware=STRING, key_fingerprint=HEX),
        generated=_obj(sim_time=NUMBER, wall_time=NUMBER),
        window=_obj(end_sim_time=NUMBER, closed_by={"enum": ["report", "until"]}),
        true_time={"enum": ["wall_clock", "shared_clock", "unknown"]},
        observed=_obj(
            attached_after_seq=INTEGER,
            first_seq={"type": ["integer", "null"]},
            last_seq={"type": ["integer", "null"]},
            requests=INTEGER,
            power_events=INTEGER,
        ),
        verdict=VERDICT,
        counts={"type": "object", "properties": {v: INTEGER for v in VERDICT["enum"]}},
        checks={
            "type": "array",
            "items": _obj(
                id=STRING,
                title=STRING,
                verdict=VERDICT,
                exercised=INTEGER,
                findings=INTEGER,
                evidence={"type": "array", "items": FINDING},
                evidence_truncated=BOOLEAN,
                notes={"type": "array", "items": STRING},
            ),
        },
        findings_by_code=_map(INTEGER),
    ),
}
"""The control API's answers (200 bodies and the error body) by component name."""


@dataclass(frozen=True)
class Operation:
    """One control operation. ``body``: a ``schemas.CONTROL_BODIES`` name; ``ok``: media type -> schema of the
    200 answer (a ``RESPONSES`` name for JSON); ``errors``: status -> description (JSON error bodies)."""

    method: str
    path: str
    summary: str
    ok: dict[str, Schema | str]
    body: str | None = None
    body_optional: bool = False
    query: tuple[Schema, ...] = ()
    public: bool = False  # no token needed (as in the route table)
    guarded: bool = True  # the browser guard applies: 403 for a foreign Host or Origin (as in the route table)
    errors: dict[str, str] = field(default_factory=dict)


def _json(name: str) -> dict[str, Schema | str]:
    return {"application/json": name}


TEXT: Schema = {"type": "string"}
SERIAL_PATH = "/api/meters/{serial}"

CATALOGUE: tuple[Operation, ...] = (
    Operation(
        "get",
        "/healthz",
        "200 when every powered meter listens, else 503 naming those that do not",
        _json("Health"),
        public=True,
        guarded=False,
    ),
    Operation("get", "/", "The dashboard page", {"text/html": TEXT}, public=True),
    Operation(
        "get",
        "/static/{path}",
        "Dashboard files (the page, its script, style and icon)",
        dict.fromkeys(STATIC_TYPES, TEXT),
        public=True,
        errors={"404": "not_found: no such dashboard file"},
    ),
    Operation("get", "/metrics", "Prometheus text exposition", {"text/plain": TEXT}),
    Operation("get", "/api/openapi.json", "This document", _json("OpenApiDocument")),
    Operation("get", "/api/openapi-meter.json", "OpenAPI document of the meter API", _json("OpenApiDocument")),
    Operation(
        "get",
        "/api/events",
        "Live event stream (Server-Sent Events: one JSON object per data line); takes ?token=",
        {"text/event-stream": TEXT},
        query=(
            _query("token", {"type": "string"}, "the control token, for EventSource (which cannot send headers)"),
            _query("serial", SERIAL_SCHEMA, "only the events of this meter"),
        ),
        errors={"404": "unknown_meter: no meter with that serial", "503": "the twin is shutting down"},
    ),
    Operation("get", "/api/meters", "Every meter: serial, model, url, powered, transaction", _json("MeterList")),
    Operation("get", SERIAL_PATH, "Full state of one meter", _json("MeterState")),
    Operation(
        "put", SERIAL_PATH + "/load", "Set current and voltage, optionally ramped", _json("Electrical"), body="Load"
    ),
    Operation(
        "patch",
        SERIAL_PATH + "/profile",
        "Change firmware switches (meter-api.md §6); every refusal is bad_switch",
        _json("Switched"),
        body="Switches",
    ),
    Operation("post", SERIAL_PATH + "/power", "Power on or off", _json("Powered"), body="Power", errors=STORAGE_ERROR),
    Operation(
        "post",
        SERIAL_PATH + "/power-cycle",
        "Off, wait off_ms of simulated time, on",
        _json("PowerCycled"),
        body="PowerCycle",
        body_optional=True,
        errors=STORAGE_ERROR,
    ),
    Operation(
        "put",
        SERIAL_PATH + "/registers",
        "Test labs: set the absolute registers (whole mWh, below 10^14), e.g. just below the wrap; 428 during a "
        "transaction",
        _json("RegisterValues"),
        body="Registers",
        errors={"428": "transaction_running", **STORAGE_ERROR},
    ),
    Operation("get", "/api/faults", "The meter fault catalogue", _json("FaultCatalogue")),
    Operation(
        "put",
        SERIAL_PATH + "/faults/{name}",
        "Raise a meter fault",
        _json("ActiveFaults"),
        body="Fault",
        body_optional=True,
        errors={"404": "unknown meter or fault", **STORAGE_ERROR},
    ),
    Operation(
        "delete",
        SERIAL_PATH + "/faults/{name}",
        "Clear a meter fault",
        _json("ActiveFaults"),
        errors={"404": "unknown meter or fault"},
    ),
    Operation(
        "get", SERIAL_PATH + "/network", "Network-fault rules and how often each action fired", _json("NetworkState")
    ),
    Operation(
        "put", SERIAL_PATH + "/network", "Replace the network-fault rules", _json("NetworkState"), body="NetworkRules"
    ),
    Operation(
        "delete",
        SERIAL_PATH + "/network",
        "Clear the network-fault rules (hung requests are let go)",
        _json("NetworkState"),
    ),
    Operation(
        "get",
        SERIAL_PATH + "/next-record",
        "The pending faulty-record kind and the known kinds",
        _json("NextRecordState"),
    ),
    Operation(
        "put",
        SERIAL_PATH + "/next-record",
        "Make the next signed record faulty (ocmf.md §5)",
        _json("NextRecordState"),
        body="NextRecord",
    ),
    Operation("delete", SERIAL_PATH + "/next-record", "The next record is healthy again", _json("NextRecordState")),
    Operation("get", "/api/clock", "The simulation clock", _json("Clock")),
    Operation(
        "put",
        "/api/clock",
        "Switch clock mode and rate (400 clock_not_virtual: a real clock runs at rate 1)",
        _json("Clock"),
        body="ClockSetting",
    ),
    Operation(
        "post",
        "/api/clock/advance",
        "Jump virtual time forward (400 clock_not_virtual on a real clock; 400 time_out_of_range past "
        "9998-12-31T23:59:59Z, the last time a meter can show)",
        _json("Clock"),
        body="Advance",
    ),
    Operation(
        "get",
        SERIAL_PATH + "/journal",
        "Meter-API requests seen, with findings",
        _json("Journal"),
        query=(
            _query("since", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}, "entries after this seq"),
            _query("limit", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}, "at most this many"),
        ),
    ),
    Operation("delete", SERIAL_PATH + "/journal", "Clear the journal", _json("Cleared")),
    Operation(
        "get",
        SERIAL_PATH + "/records",
        "Signed records, oldest first; with ?format=safe-xml the S.A.F.E. Transparenzsoftware container "
        "(application/xml, docs/safe-export.md)",
        {"application/json": "Records", "application/xml": {"type": "string", "pattern": "^<\\?xml "}},
        query=(
            _query("format", {"enum": ["json", "safe-xml"]}, "safe-xml: the Transparenzsoftware's XML container"),
            _query("pg", {"type": "string", "pattern": "^T(0|[1-9][0-9]{0,9})$"}, "only this pagination (PG)"),
            _query(
                "key",
                {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                "only records of this key fingerprint (16 lowercase hex digits)",
            ),
        ),
        errors={
            "400": "bad_query: format, pg or key out of form, or given more than once (the message names it)",
            "404": "unknown meter, or no record matches pg/key (unknown_record)",
            "503": DAMAGED_RECORD,
        },
    ),
    Operation(
        "post",
        SERIAL_PATH + "/factory-reset",
        "A new meter in the same slot; old records archived",
        _json("FactoryResetResult"),
        body="FactoryReset",
        body_optional=True,
        errors={"503": f"{STORAGE_ERROR['503']}; or {DAMAGED_RECORD}"},
    ),
    Operation(
        "get",
        SERIAL_PATH + "/conformance",
        "Conformance report of the driver that talked to this meter",
        {"application/json": "ConformanceReport", "text/plain": TEXT},
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

ALLOW_HEADER: Schema = {
    "Allow": {"description": "the methods this path answers", "schema": {"type": "string"}, "required": True}
}


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


def _parameters(op: Operation) -> list[Schema]:
    params: list[Schema] = []
    if "{serial}" in op.path:
        params.append(SERIAL)
    if "{name}" in op.path:
        params.append(FAULT_NAME)
    if "{path}" in op.path:
        params.append(STATIC_PATH)
    return params + list(op.query)


def _content(schema: Schema | str) -> Schema:
    return {"schema": _ref(schema) if isinstance(schema, str) else schema}


def _error(description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _operation(op: Operation) -> Schema:
    ok = {"description": "Success", "content": {media: _content(schema) for media, schema in op.ok.items()}}
    responses: dict[str, Any] = {"200": ok}
    errors = dict(op.errors)
    if "{serial}" in op.path:
        errors.setdefault("404", "unknown_meter")
    if op.body is not None or op.query:
        errors.setdefault("400", "bad body or query; the message names the problem")
    if op.body is not None:
        errors.setdefault("408", "request_timeout: the body took longer than --idle-timeout; the connection is closed")
        errors.setdefault("413", "body_too_large: more than 64 KiB")
        errors.setdefault("415", "unsupported_media_type: a body that is not application/json")
    if not op.public:
        errors.setdefault("401", "the control token is set and was not given")
    if op.guarded:
        errors.setdefault("403", "host_not_allowed or origin_not_allowed: a foreign Host or Origin header")
    errors["405"] = "method_not_allowed: a method this path does not answer (Allow lists those it does)"
    for status, text in sorted(errors.items()):
        responses[status] = _error(text)
    if op.path == "/healthz":
        responses["503"] = {"description": "a powered meter is not listening", "content": ok["content"]}
    responses["405"]["headers"] = ALLOW_HEADER
    if not op.public:
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}, "required": True}
        }
    data: Schema = {
        "operationId": op.method + "".join(part.strip("{}").title() for part in op.path.replace("-", "/").split("/")),
        "summary": op.summary,
        "responses": responses,
    }
    params = _parameters(op)
    if params:
        data["parameters"] = params
    if op.body is not None:
        data["requestBody"] = {"required": not op.body_optional, "content": {"application/json": _content(op.body)}}
    if op.public:
        data["security"] = []
    return data


def control_document(routes: set[tuple[str, str]] | None = None, server: str = "http://127.0.0.1:8090") -> Schema:
    """The control API's OpenAPI 3.1 document; with ``routes``, only the operations the app serves; ``server``:
    the control API's base URL."""
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
            "is 200; every error is a 4xx (503 when a change cannot be saved) with a JSON body {error, message}. "
            "Request bodies must be application/json.",
        },
        "servers": [{"url": server, "description": "the control API"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**schemas.public(schemas.CONTROL_BODIES), **RESPONSES},  # names differ (a test checks)
        },
    }


def meter_document() -> Schema:
    """The meter API's document, shipped as package data of ``iemdcr_twin.simulator``."""
    text = resources.files("iemdcr_twin.simulator").joinpath(METER_DOCUMENT).read_text(encoding="utf-8")
    document: Schema = json.loads(text)
    return document


def _url(host: str, port: int) -> str:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"http://{host}:{port}"
    return f"http://[{literal}]:{port}" if literal.version == 6 else f"http://{literal}:{port}"


def bound_url(request: web.Request) -> str:
    """The control API's base URL as bound: the twin's bind address (or, for a wildcard bind, the address the
    client reached) and the port of this connection."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    if not sockname:
        return str(request.url.origin())
    bind = request.app[TWIN_KEY].bind
    wildcard = bind in ("", "0.0.0.0", "::", "[::]")
    return _url(sockname[0] if wildcard else bind, int(sockname[1]))


async def get_control_document(request: web.Request) -> web.StreamResponse:
    return web.json_response(control_document(app_routes(request.app), bound_url(request)))


async def get_meter_document(request: web.Request) -> web.StreamResponse:
    document = meter_document()
    slots = request.app[TWIN_KEY].slots.values()
    document["servers"] = [{"url": slot.url, "description": f"meter {slot.meter.serial}"} for slot in slots]
    return web.json_response(document)
