"""HTTP client: headers, compact JSON, new connection per request, timeouts as transport failures."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from aiohttp import web

from iemdcr_twin.driver.client import MeterHttpClient
from iemdcr_twin.driver.errors import TransportError


async def test_headers_body_and_fresh_connections(aiohttp_server: Any) -> None:
    seen: list[tuple[str, str | None, bytes, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append((request.method, request.headers.get("Content-Type"), await request.read(), peer))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/x", handler)
    server = await aiohttp_server(app)
    client = MeterHttpClient(f"http://127.0.0.1:{server.port}", 1.0)
    try:
        first = await client.request("POST", "/x", {"TX": "B", "n": [1, 2]})
        second = await client.request("GET", "/x")
    finally:
        await client.close()
    assert (first.status, first.text, second.status) == (200, "ok", 200)
    assert seen[0][0:3] == ("POST", "application/json", b'{"TX":"B","n":[1,2]}')
    assert seen[1][0:2] == ("GET", "application/json")
    assert seen[0][3] != seen[1][3]  # different client ports: a new TCP connection per request
    assert json.loads(seen[0][2]) == {"TX": "B", "n": [1, 2]}


async def test_timeout_is_a_transport_error(aiohttp_server: Any) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/x", hang)
    server = await aiohttp_server(app)
    client = MeterHttpClient(f"http://127.0.0.1:{server.port}", 0.05)
    try:
        with pytest.raises(TransportError, match="timeout"):
            await client.request("GET", "/x")
    finally:
        await client.close()


async def test_connection_refused_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = MeterHttpClient(f"http://127.0.0.1:{port}", 1.0)
    try:
        with pytest.raises(TransportError, match="GET /x"):
            await client.request("GET", "/x")
    finally:
        await client.close()
