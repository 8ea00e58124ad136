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

from .host import NETWORK_FAULT_KEY, Handler, MeterHost
from .model import Meter, Refusal

HOST_KEY = web.AppKey("meter_host", MeterHost)
BASE = "/counter/v1/ocmf/"
V2_TRANSACTION = "/counter/v2/ocmf/transaction"
MAX_BODY = 8 * 1024
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
_REQUEST_BODY = web.RequestKey("meter_api_request_body", object)

JsonGetter = Callable[[Meter], dict[str, Any]]
JsonPoster = Callable[[Meter, dict[str, Any]], dict[str, Any]]
TextGetter = Callable[[Meter], str]

JSON_GET: dict[str, JsonGetter] = {
    "gw": Meter.get_gw,
    "tariff": Meter.get_tariff,
    "metervalue": Meter.get_metervalue,
    "publickey": Meter.get_publickey,
    "datetime": Meter.get_datetime,
    "user": Meter.get_user,
}
JSON_POST: dict[str, JsonPoster] = {
    "gw": Meter.post_gw,
    "tariff": Meter.post_tariff,
    "datetime": Meter.post_datetime,
    "user": Meter.post_user,
    "receipt": Meter.post_receipt,
}


def error_response(status: int, code: str, message: str) -> web.Response:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":"))
    return web.Response(status=status, body=body.encode(), content_type="application/json")


def json_response(data: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json")


class _Rendered:
    """The last metervalue body of one meter and the key it was rendered for."""

    def __init__(self) -> None:
        self.key: tuple[object, ...] | None = None
        self.body = b""


_RENDERED = web.AppKey("metervalue_rendered", _Rendered)


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
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # e.g. a Content-Encoding the body does not match
        raise Refusal(400, "bad_json", "the body could not be decoded") from None
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deeply nested arrays
        request[_REQUEST_BODY] = raw[:200].decode("utf-8", "replace")
        raise Refusal(400, "bad_json", "the body must be a JSON object") from None
    request[_REQUEST_BODY] = body
    if not isinstance(body, dict):
        raise Refusal(400, "bad_json", "the body must be a JSON object, not " + type(body).__name__)
    return body


async def _get_metervalue(request: web.Request) -> web.StreamResponse:
    """GET metervalue, rendered at most once per meter millisecond while nothing else changes."""
    meter = request.app[HOST_KEY].meter
    rendered = request.app[_RENDERED]
    if rendered.key is not None and rendered.key == meter.metervalue_key(meter.meter_tm()):
        return web.Response(body=rendered.body, content_type="application/json")
    data = meter.get_metervalue()
    rendered.body = json.dumps(data, separators=(",", ":")).encode()
    rendered.key = meter.metervalue_key(data["TM"])
    return web.Response(body=rendered.body, content_type="application/json")


async def _get_receipt(request: web.Request) -> web.StreamResponse:
    return text_response(request.app[HOST_KEY].meter.get_receipt())


async def _get_transaction_v1(request: web.Request) -> web.StreamResponse:
    meter = request.app[HOST_KEY].meter
    if not meter.switches.v1_transaction:
        raise web.HTTPNotFound()
    return text_response(meter.get_transaction())


async def _get_transaction_v2(request: web.Request) -> web.StreamResponse:
    return text_response(request.app[HOST_KEY].meter.get_transaction())


@web.middleware
async def _device_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Journal every request, map refusals to their status, and never leak a traceback."""
    host = request.app[HOST_KEY]
    host.clock.note_activity()
    started = time.perf_counter()
    latency = host.meter.switches.response_latency_ms
    if latency:
        await host.clock.sleep(latency / 1000, for_busy=True)
    try:
        if host.interceptor is not None:
            response = await host.interceptor(request, handler)
        else:
            response = await handler(request)
        error = request.get(NETWORK_FAULT_KEY)
    except Refusal as refusal:
        response, error = error_response(refusal.status, refusal.code, refusal.message), refusal.code
    except web.HTTPException as exc:
        error = _HTTP_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, error, _http_message(request, exc.status))
    host.clock.note_activity()
    host.journal.add(
        sim_time=host.clock.now(),
        wall_time=time.time(),
        method=request.method,
        path=request.path,
        body=request.get(_REQUEST_BODY),
        status=response.status,
        error=error,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
    return response


def _http_message(request: web.Request, status: int) -> str:
    if status == 404:
        return f"no node at {request.path[:100]}"
    if status == 405:
        return f"{request.method} is not allowed on {request.path[:100]}"
    if status == 413:
        return f"the body is larger than {MAX_BODY} bytes"
    return "the request was refused"


def create_meter_app(host: MeterHost) -> web.Application:
    """The app one meter serves on its own port."""
    app = web.Application(middlewares=[_device_middleware], client_max_size=MAX_BODY)
    app[HOST_KEY] = host
    app[_RENDERED] = _Rendered()
    router = app.router
    for node, getter in JSON_GET.items():
        handler = _get_metervalue if node == "metervalue" else _get_json(getter)
        router.add_get(BASE + node, handler, allow_head=False)
    for node, poster in JSON_POST.items():
        router.add_post(BASE + node, _post_json(poster))
    router.add_get(BASE + "receipt", _get_receipt, allow_head=False)
    router.add_get(BASE + "transaction", _get_transaction_v1, allow_head=False)
    router.add_get(V2_TRANSACTION, _get_transaction_v2, allow_head=False)
    return app
