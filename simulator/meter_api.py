"""The IEM-DCR REST API on the wire: thin aiohttp handlers over the meter model (meter-api.md §1-§2).

Status codes and JSON shapes live here and nowhere else. Every non-200 answer is
``{"error": code, "message": text}``; the OCMF nodes answer the record's exact bytes as text/plain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.host import NETWORK_FAULT_KEY, Handler, MeterHost
from iemdcr_twin.simulator.journal import Route, route_of
from iemdcr_twin.simulator.json_depth import BadJson, not_an_object, parse_json
from iemdcr_twin.simulator.limits import BODY_TIMEOUT_KEY, IDLE_TIMEOUT_S, UnreadableBody, answer_and_close, read_body
from iemdcr_twin.simulator.model import GwBlock, LiveReading, Meter, PublicKey, ReceiptAnswer, Refusal, UserBlock
from iemdcr_twin.simulator.model.energy import format_kwh

HOST_KEY = web.AppKey("meter_host", MeterHost)
BASE = "/counter/v1/ocmf/"
V2_TRANSACTION = "/counter/v2/ocmf/transaction"
MAX_BODY = 8 * 1024
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
_REQUEST_BODY = web.RequestKey("meter_api_request_body", object)

JsonGetter = Callable[[Meter], dict[str, Any]]
JsonPoster = Callable[[Meter, dict[str, Any]], dict[str, Any]]


# ---- the JSON bodies (meter-api.md §2): the model answers typed values, these give them their wire shape ----


def gw_body(gw: GwBlock) -> dict[str, Any]:
    """``{"CT","CI","TM"}``."""
    return {"CT": gw.CT, "CI": gw.CI, "TM": gw.TM}


def tariff_body(tt: str) -> dict[str, Any]:
    """``{"TT"}``."""
    return {"TT": tt}


def datetime_body(tm: str) -> dict[str, Any]:
    """``{"TM"}``."""
    return {"TM": tm}


def user_body(user: UserBlock) -> dict[str, Any]:
    """``{"IS","IL","IF","IT","ID","US"[,"TT"]}``: the stored user block, TT when it carried one."""
    return user.fields()


def publickey_body(key: PublicKey) -> dict[str, Any]:
    """``{"SA","PK"}``."""
    return {"SA": key.SA, "PK": key.PK}


def receipt_body(answer: ReceiptAnswer) -> dict[str, Any]:
    """``{"TX","XT"}``."""
    return {"TX": answer.TX, "XT": answer.XT}


JSON_GET: dict[str, JsonGetter] = {
    "gw": lambda meter: gw_body(meter.get_gw()),
    "tariff": lambda meter: tariff_body(meter.get_tariff()),
    "publickey": lambda meter: publickey_body(meter.get_publickey()),
    "datetime": lambda meter: datetime_body(meter.get_datetime()),
    "user": lambda meter: user_body(meter.get_user()),
}
JSON_POST: dict[str, JsonPoster] = {
    "gw": lambda meter, body: gw_body(meter.post_gw(body)),
    "tariff": lambda meter, body: tariff_body(meter.post_tariff(body)),
    "datetime": lambda meter, body: datetime_body(meter.post_datetime(body)),
    "user": lambda meter, body: user_body(meter.post_user(body)),
    "receipt": lambda meter, body: receipt_body(meter.post_receipt(body)),
}


def error_response(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":"))
    return web.Response(status=status, body=body.encode(), content_type="application/json")


def json_response(data: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json")


def text_response(text: str) -> web.Response:
    return web.Response(body=text.encode(), content_type="text/plain", charset="utf-8")


def _get_json(getter: JsonGetter) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(getter(request.app[HOST_KEY].meter))

    return handler


def _post_json(poster: JsonPoster) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await _read_object(request)
        return json_response(poster(request.app[HOST_KEY].meter, body))

    return handler


async def _read_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, journaled as it came (``_REQUEST_BODY``); Refusal as ``limits.read_body`` and
    ``json_depth.parse_json`` word it (a key given twice keeps its last value, as a device parser does)."""
    try:
        raw = await read_body(request)
    # A client that left mid-body is journaled and answered to nobody, without a traceback; a half-sent body
    # must not hold the connection (and its descriptor) for ever (408, then closed: _device).
    except UnreadableBody as exc:
        raise Refusal(exc.status, exc.code, str(exc)) from None
    try:
        body = parse_json(raw)
    except BadJson as exc:
        request[_REQUEST_BODY] = raw[:200].decode("utf-8", "replace")
        raise Refusal(400, "bad_json", str(exc)) from None
    request[_REQUEST_BODY] = body
    if not isinstance(body, dict):
        raise Refusal(400, "bad_json", not_an_object(body))
    return body


def metervalue_body(r: LiveReading) -> bytes:
    """``GET metervalue`` (meter-api.md §4): the keys in the spec's order, rendered straight to compact JSON.

    The hot path of every driver's 1 Hz poll: one format string instead of building and encoding nested dicts.
    The only renderer of this body (a test parses its bytes against §4's order and types).
    """
    return (
        f'{{"MS":"{r.MS}","TM":"{r.TM}","EF":"{r.EF}","ST":"{r.ST}","XT":{"true" if r.XT else "false"},'
        f'"RD":[{{"RV":"{format_kwh(r.import_mwh)}","RI":"1-b:1.8.e","RU":"kWh","RT":"DC"}},'
        f'{{"RV":"{format_kwh(r.export_mwh)}","RI":"1-b:2.8.e","RU":"kWh","RT":"DC"}},'
        f'{{"WV":"{format_kwh(r.tx_import_mwh)}","WI":"transaction_1-b:1.8.e","WU":"kWh","WT":"DC"}},'
        f'{{"WV":"{format_kwh(r.tx_export_mwh)}","WI":"transaction_1-b:2.8.e","WU":"kWh","WT":"DC"}}],'
        f'"U1":{r.shunt_voltage!r},"U2":{r.voltage_shown!r},"U3":0,"U4":0,"I":{r.current_shown!r},'
        f'"P":{r.power_shown!r},"XS":"0x{r.XS:016X}","XC":"{r.XC}"}}'
    ).encode()


class _Sample:
    """The last metervalue body of one meter: a reading is taken at most once per meter millisecond.

    Like a real meter's sampling: within one millisecond of simulated time and with no change of state
    (``Meter.state_version``), a poll gets the same bytes; time passing or any change makes a new reading.
    """

    __slots__ = ("body", "key")

    def __init__(self) -> None:
        self.key: tuple[int, int] = (-1, -1)
        self.body = b""


def _metervalue_handler(host: MeterHost) -> Handler:
    """GET metervalue: the hot path of every driver's 1 Hz poll, so it keeps its meter and sample at hand."""
    meter, clock, sample = host.meter, host.clock, _Sample()

    async def get_metervalue(request: web.Request) -> web.StreamResponse:
        key = (meter.state_version, int(clock.now() * 1000))
        if key != sample.key:
            sample.body = metervalue_body(meter.live_reading())
            sample.key = key
        return web.Response(body=sample.body, content_type="application/json")

    return get_metervalue


async def _get_receipt(request: web.Request) -> web.StreamResponse:
    return text_response(request.app[HOST_KEY].meter.get_receipt())


async def _get_transaction_v1(request: web.Request) -> web.StreamResponse:
    meter = request.app[HOST_KEY].meter
    if not meter.switches.v1_transaction:
        raise web.HTTPNotFound()
    return text_response(meter.get_transaction())


async def _get_transaction_v2(request: web.Request) -> web.StreamResponse:
    return text_response(request.app[HOST_KEY].meter.get_transaction())


def _device(handler: Handler, host: MeterHost, route: Route | None = None) -> Handler:
    """Wrap a node's handler: journal the request, map refusals to their status, never leak a traceback.

    A wrapper per route rather than an aiohttp middleware: it is the hot path of every poll, and unknown
    paths and methods get routes of their own (below) so they are answered and journaled the same way.
    ``route`` is the journal's shared method and path when the route has one fixed method.
    """
    clock, journal, meter = host.clock, host.journal, host.meter

    async def device_handler(request: web.Request) -> web.StreamResponse:
        clock.note_activity()
        started = time.perf_counter()
        latency = meter.switches.response_latency_ms
        if latency:
            await clock.sleep(latency / 1000, for_busy=True)
        try:
            if host.interceptor is not None:
                response = await host.interceptor(request, handler)
                error = request.get(NETWORK_FAULT_KEY)
            else:
                response = await handler(request)
                error = None
        except Refusal as refusal:
            response, error = error_response(refusal.status, refusal.code, refusal.message), refusal.code
        except web.HTTPException as exc:
            error = _HTTP_CODES.get(exc.status, "http_error")
            response = error_response(exc.status, error, _http_message(request, exc.status))
            if exc.status == 405:  # Allow: the methods the node answers (RFC 9110 §15.5.6)
                response.headers["Allow"] = exc.headers.get("Allow", "")
        clock.note_activity()
        journal.record(  # positional: this runs on every poll
            route or route_of(request.method, request.path),
            clock.now(),
            clock.wall(),
            None if request.method == "GET" else request.get(_REQUEST_BODY),
            response.status,
            error,
            (time.perf_counter() - started) * 1000,
        )
        if error == "request_timeout":  # a body that stopped arriving: answered now, the connection closed
            await answer_and_close(request, response)
        return response

    return device_handler


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


def _method_not_allowed(allowed: list[str]) -> Handler:
    """The ``*`` route of a node: 405 naming the methods the node answers (its ``Allow`` header)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return handler


def _http_message(request: web.Request, status: int) -> str:
    if status == 404:
        return f"no node at {request.path[:100]}"
    if status == 405:
        return f"{request.method} is not allowed on {request.path[:100]}"
    if status == 413:
        return f"the body is larger than {MAX_BODY} bytes"
    return "the request was refused"


def _routes(host: MeterHost) -> dict[str, dict[str, Handler]]:
    """Every node's handlers by path and method."""
    routes: dict[str, dict[str, Handler]] = {BASE + "metervalue": {"GET": _metervalue_handler(host)}}
    for node, getter in JSON_GET.items():
        routes.setdefault(BASE + node, {})["GET"] = _get_json(getter)
    for node, poster in JSON_POST.items():
        routes.setdefault(BASE + node, {})["POST"] = _post_json(poster)
    routes[BASE + "receipt"]["GET"] = _get_receipt
    routes.setdefault(BASE + "transaction", {})["GET"] = _get_transaction_v1
    routes[V2_TRANSACTION] = {"GET": _get_transaction_v2}
    return routes


def create_meter_app(host: MeterHost, *, body_timeout_s: float = IDLE_TIMEOUT_S) -> web.Application:
    """The app one meter serves on its own port; a body slower than ``body_timeout_s`` gets 408."""
    app = web.Application(client_max_size=MAX_BODY)
    app[HOST_KEY] = host
    app[BODY_TIMEOUT_KEY] = float(body_timeout_s)
    router = app.router
    for path, by_method in _routes(host).items():
        resource = router.add_resource(path)
        for method, handler in by_method.items():
            resource.add_route(method, _device(handler, host, route_of(method, path)))
        resource.add_route("*", _device(_method_not_allowed(sorted(by_method)), host))
    router.add_route("*", "/{anything:.*}", _device(_not_found, host))
    return app
