"""HTTP for tests: the meter API's base path, JSON answers checked, raw bytes on a socket, libcurl-like sessions.

Nothing here waits on wall time for a result: ``until`` lets the event loop finish work it does on its own and
only guards against a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp

V1 = "/counter/v1/ocmf/"  # the meter API's v1 nodes (meter-api.md §2)
JSON_TYPE = {"Content-Type": "application/json"}  # the control API takes bodies of this type only (415 otherwise)
GUARD_S = 60.0  # a guard against a hang, never a measure of speed

# Raw requests aiohttp's own HTTP parser refuses, and one body it cannot decode while draining a request nobody
# read (the meter and control listeners answer them with a plain-text 400, log_limits.py rate-limits the log).
RAW_HEAD = "Host: 127.0.0.1\r\nConnection: close\r\n"
_RAW_TARIFF = f"POST {V1}tariff HTTP/1.1\r\n" + RAW_HEAD
MALFORMED: dict[str, bytes] = {
    "bad chunk size": (
        _RAW_TARIFF + "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"
    ).encode(),
    "chunked and a length": (
        _RAW_TARIFF + "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ).encode(),
    "over-long URL": b"GET /" + b"a" * 9000 + f" HTTP/1.1\r\n{RAW_HEAD}\r\n".encode(),
    "over-long header": f"GET /healthz HTTP/1.1\r\n{RAW_HEAD}X-Pad: ".encode() + b"a" * 9000 + b"\r\n\r\n",
    "unsupported encoding": (_RAW_TARIFF + "Content-Encoding: br\r\nContent-Length: 2\r\n\r\n{}").encode(),
}
UNREAD_BAD_GZIP = (
    f"GET {V1}metervalue HTTP/1.1\r\n{RAW_HEAD}Content-Encoding: gzip\r\nContent-Length: 5\r\n\r\nxxxxx"
).encode()


def curl_like_session() -> aiohttp.ClientSession:
    """A client like libcurl in EVerest: a new TCP connection per request (use it with ``async with``)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def json_ok(resp: aiohttp.ClientResponse) -> Any:
    """The JSON body of a 200 (the assertion shows any other answer's body)."""
    raw = await resp.read()
    assert resp.status == 200, raw
    return json.loads(raw)


async def json_error(resp: aiohttp.ClientResponse, status: int, code: str, *words: str) -> dict[str, Any]:
    """A JSON error with this status and code whose message names every one of ``words``."""
    raw = await resp.read()
    assert resp.status == status, raw
    body: dict[str, Any] = json.loads(raw)
    assert body["error"] == code, body
    for word in words:
        assert word in body["message"], (word, body)
    return body


async def send_raw(host: str, port: int, raw: bytes) -> bytes:
    """Write ``raw`` on a connection of its own and read until the peer closes: b"" when it closed unanswered."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(GUARD_S):
            try:
                return await reader.read()
            except ConnectionResetError:
                return b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def assert_408_and_closed(received: bytes, timeout_s: float) -> None:
    """``received`` (``send_raw``'s bytes) is a 408 ``request_timeout`` that closes the connection, as both APIs
    answer a body still incomplete after ``timeout_s`` (simulator/limits.py ``answer_and_close``)."""
    response_head, _, body = received.partition(b"\r\n\r\n")
    assert response_head.startswith(b"HTTP/1.1 408 "), received
    assert b"Connection: close" in response_head
    assert json.loads(body) == {
        "error": "request_timeout",
        "message": f"the body did not arrive within {timeout_s:g} s; the connection is closed",
    }


async def until(predicate: Callable[[], bool], limit_s: float = GUARD_S) -> None:
    """Let the event loop finish work it does on its own (a request reaching its wait, a background task, a
    browser's click), polling every 2 ms.

    ``limit_s`` is only a guard against a hang, never a measure of speed: it is generous, so that a loaded
    machine cannot make the test fail."""
    for _ in range(round(limit_s / 0.002)):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")
