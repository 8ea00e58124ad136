"""Who may drive the control API.

The control token (control-api.md §1): every control route but the public ones needs it; meters never do. And
no foreign web page (§2): a body must be JSON (415), a foreign ``Origin`` or ``Host`` is 403, no CORS grant is
ever sent; all of it on the control port only.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator import cli
from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.control.openapi import app_routes
from iemdcr_twin.simulator.control.security import (
    TOKEN_ENV,
    BrowserGuard,
    EmptyToken,
    host_arg,
    host_name,
    origin_arg,
    token_from_env,
)
from iemdcr_twin.simulator.fleet import Twin
from tests.support.http import JSON_TYPE, json_error, json_ok
from tests.support.twin import S1, meter_url, new_twin

Client = TestClient[Any, Any]
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = {("GET", "/healthz"), ("GET", "/"), ("GET", "/static/{path}")}


@pytest.fixture
async def control(aiohttp_client: Callable[[web.Application], Awaitable[Client]], twin: Twin) -> Client:
    return await aiohttp_client(create_control_app(twin, token=TOKEN))


def concrete(path: str) -> str:
    return path.replace("{serial}", S1).replace("{name}", "clock_lost").replace("{path}", "app.js")


async def test_every_non_public_route_is_401_without_the_token(control: Client) -> None:
    routes = app_routes(control.app)
    assert ("GET", "/metrics") in routes
    for method, path in sorted(routes - PUBLIC):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            resp = await control.request(method, concrete(path), headers=headers)
            body = await json_error(resp, 401, "unauthorized", "Bearer")
            assert body and resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_unknown_paths_are_401_too_so_routes_do_not_leak(control: Client) -> None:
    await json_error(await control.get("/api/nothing-here"), 401, "unauthorized")


async def test_the_token_opens_the_api_and_healthz_is_public(control: Client, twin: Twin) -> None:
    assert await json_ok(await control.get("/healthz")) == {"ok": True}
    meters = await json_ok(await control.get("/api/meters", headers=AUTH))
    assert [m["serial"] for m in meters["meters"]] == [S1]
    lower = {"Authorization": f"bearer {TOKEN}"}
    assert (await json_ok(await control.get("/api/clock", headers=lower)))["mode"] == "virtual"
    await json_error(await control.get("/api/clock", params={"token": TOKEN}), 401, "unauthorized")


async def test_event_stream_takes_the_token_in_the_query(control: Client) -> None:
    await json_error(await control.get("/api/events", params={"token": "wrong"}), 401, "unauthorized")
    resp = await control.get("/api/events", params={"token": TOKEN})
    assert resp.status == 200
    resp.close()


async def test_the_meter_api_never_asks_for_the_token(control: Client, twin: Twin) -> None:
    async with aiohttp.ClientSession() as session, session.get(meter_url(twin, "publickey")) as resp:
        assert resp.status == 200


def test_token_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert token_from_env(None) is None
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert token_from_env(None) == "from-env"
    assert token_from_env("flag") == "flag"
    monkeypatch.setenv(TOKEN_ENV, "")
    with pytest.raises(EmptyToken, match=f"{TOKEN_ENV} is set but empty"):
        token_from_env(None)
    assert token_from_env("flag") == "flag"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_explicitly_empty_control_token_is_refused_naming_it(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty ``--control-token`` (or ``IEMDCR_CONTROL_TOKEN``) used to turn authentication off silently."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--port", "0", "--control-token", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --control-token: an empty token would turn authentication off" in err

    monkeypatch.setattr(cli, "configure_logging", lambda fmt: None)  # cli.main would replace pytest's handlers
    monkeypatch.setenv(TOKEN_ENV, value)
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--port", "0", "--control-port", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"iemdcr-sim: {TOKEN_ENV} is set but empty, which would turn authentication off; give it a token, or "
        "unset it to run without one\n"
    )


# ---- foreign web pages: media type, Origin, Host, no CORS (control-api.md §2) ---------------------------------

Factory = Callable[[web.Application], Awaitable[Client]]
POWER_OFF = b'{"on":false}'
ATTACKER = "http://attacker.example:8000"


@pytest.fixture
async def open_control(aiohttp_client: Factory, twin: Twin) -> Client:
    """The control app without a token, as ``iemdcr-sim serve`` starts it by default."""
    return await aiohttp_client(create_control_app(twin))


def origin_of(client: Client) -> str:
    return f"http://127.0.0.1:{client.port}"


async def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte on its own connection: (status, headers in lower case, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(30):  # a guard against a hang
            raw = await reader.read()
    finally:
        writer.close()
    header_block, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, payload


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None]
)
async def test_a_body_that_is_not_json_is_415_and_changes_nothing(
    open_control: Client, twin: Twin, content_type: str | None
) -> None:
    """What a page may send without a CORS preflight (text/plain, a form) never reaches a handler."""
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await open_control.post(
        f"/api/meters/{S1}/power", data=POWER_OFF, headers=headers, skip_auto_headers=["Content-Type"]
    )
    await json_error(resp, 415, "unsupported_media_type", "application/json", "curl --json")
    assert twin.slot(S1).meter.powered


async def test_a_chunked_body_that_is_not_json_is_415(open_control: Client, twin: Twin) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield POWER_OFF[:5]
        yield POWER_OFF[5:]

    resp = await open_control.post(f"/api/meters/{S1}/power", data=chunks(), headers={"Content-Type": "text/plain"})
    await json_error(resp, 415, "unsupported_media_type")
    assert twin.slot(S1).meter.powered


async def test_json_bodies_and_empty_bodies_pass(open_control: Client, twin: Twin) -> None:
    cycles = twin.slot(S1).meter.counters["power_cycles"]
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert await json_ok(await open_control.post(f"/api/meters/{S1}/power", data=POWER_OFF, headers=charset)) == {
        "powered": False
    }
    assert await json_ok(await open_control.post(f"/api/meters/{S1}/power", json={"on": True})) == {"powered": True}
    # an empty body needs no type, even one that says text/plain (power-cycle and factory-reset take none)
    resp = await open_control.post(f"/api/meters/{S1}/power-cycle", data=b"", headers={"Content-Type": "text/plain"})
    assert (await json_ok(resp))["powered"] is True
    assert twin.slot(S1).meter.counters["power_cycles"] == cycles + 2  # the power on, then the power-cycle


@pytest.mark.parametrize("origin", [ATTACKER, "null", "http://127.0.0.1:1", "http://localhost"])
async def test_a_foreign_origin_is_403_and_changes_nothing(open_control: Client, twin: Twin, origin: str) -> None:
    key = twin.slot(S1).meter.signer.fingerprint
    headers = {**JSON_TYPE, "Origin": origin}
    resp = await open_control.post(f"/api/meters/{S1}/power", data=POWER_OFF, headers=headers)
    await json_error(resp, 403, "origin_not_allowed", origin, "--allow-origin")
    resp = await open_control.post(f"/api/meters/{S1}/factory-reset", headers={"Origin": origin})
    await json_error(resp, 403, "origin_not_allowed")
    await json_error(await open_control.get("/api/meters", headers={"Origin": origin}), 403, "origin_not_allowed")
    assert twin.slot(S1).meter.powered and twin.slot(S1).meter.signer.fingerprint == key


async def test_the_own_origin_and_allowed_origins_pass(aiohttp_client: Factory, twin: Twin) -> None:
    proxy = "https://lab.example"
    control = await aiohttp_client(create_control_app(twin, allow_origins=[proxy + "/"]))
    for origin in (origin_of(control), origin_of(control).upper(), proxy):
        resp = await control.post(f"/api/meters/{S1}/power", json={"on": True}, headers={"Origin": origin})
        assert await json_ok(resp) == {"powered": True}
    await json_error(await control.get("/api/meters", headers={"Origin": ATTACKER}), 403, "origin_not_allowed")


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8090", "10.0.0.7:8090", "[::2]:8090", ":80"])
async def test_a_foreign_host_is_403_for_reads_and_writes(open_control: Client, twin: Twin, host: str) -> None:
    """DNS rebinding: a page under its own name, resolved to 127.0.0.1, must neither read nor drive the twin."""
    status, _, body = await raw_request(open_control.port, f"GET /api/meters HTTP/1.1\nHost: {host}\n")
    assert status == 403 and b'"host_not_allowed"' in body and b"--allow-host" in body
    head = f"POST /api/meters/{S1}/power HTTP/1.1\nHost: {host}\nContent-Type: application/json\n"
    status, _, body = await raw_request(open_control.port, head + f"Content-Length: {len(POWER_OFF)}\n", POWER_OFF)
    assert status == 403 and b'"host_not_allowed"' in body
    assert twin.slot(S1).meter.powered
    # /healthz answers any name: orchestrators probe it by address, and it tells only up or down
    status, _, body = await raw_request(open_control.port, f"GET /healthz HTTP/1.1\nHost: {host}\n")
    assert (status, body) == (200, b'{"ok": true}')


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8090", "127.0.0.1:8090", "[::1]:8090", "localhost."])
async def test_loopback_names_are_answered(open_control: Client, host: str) -> None:
    status, _, body = await raw_request(open_control.port, f"GET /api/meters HTTP/1.1\nHost: {host}\n")
    assert status == 200 and S1.encode() in body


async def test_allow_host_names_and_the_wildcard(aiohttp_client: Factory, twin: Twin) -> None:
    control = await aiohttp_client(create_control_app(twin, allow_hosts=["twin", "Lab.Example:9000"]))
    for host in ("twin:8090", "lab.example", "127.0.0.1"):
        status, _, _ = await raw_request(control.port, f"GET /api/clock HTTP/1.1\nHost: {host}\n")
        assert status == 200, host
    status, _, _ = await raw_request(control.port, "GET /api/clock HTTP/1.1\nHost: other.example\n")
    assert status == 403
    anyone = await aiohttp_client(create_control_app(new_twin(), allow_hosts=["*"]))
    status, _, _ = await raw_request(anyone.port, "GET /api/clock HTTP/1.1\nHost: other.example\n")
    assert status == 200


def test_the_bound_address_is_one_of_the_names() -> None:
    guard = BrowserGuard.for_bind("0.0.0.0")
    assert guard.host_allowed("0.0.0.0:8090") and guard.host_allowed("localhost:8090")
    assert not guard.host_allowed("192.168.1.5:8090")
    assert BrowserGuard.for_bind("::").host_allowed("[::]:8090")
    assert BrowserGuard.for_bind("lab-pc").host_allowed("LAB-PC:8090")
    assert guard.host_allowed(None)  # no Host at all is no browser (HTTP/1.0 tools)


@pytest.mark.parametrize(
    ("text", "name"), [("LocalHost:8090", "localhost"), ("[::1]:8090", "::1"), ("::1", "::1"), ("[::1", "")]
)
def test_host_name(text: str, name: str) -> None:
    assert host_name(text) == name


@pytest.mark.parametrize("bad", ["", "a b", "http://x", "x/y", "[::1"])
def test_bad_allow_host_values_are_refused(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--allow-host"):
        host_arg(bad)


@pytest.mark.parametrize("bad", ["lab.example", "ftp://lab.example", "http://", "http://x/path", "*", "http://*"])
def test_bad_allow_origin_values_are_refused(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--allow-origin"):
        origin_arg(bad)


async def test_no_cors_grant_is_ever_sent(open_control: Client) -> None:
    """A preflight gets no grant, so a page can never send JSON or read an answer cross-origin."""
    for origin in (ATTACKER, origin_of(open_control)):
        preflight = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        for method, path in (("OPTIONS", f"/api/meters/{S1}/power"), ("OPTIONS", "/api/meters"), ("GET", "/")):
            resp = await open_control.request(method, path, headers=preflight)
            assert resp.status in (403, 405, 200), (method, path, resp.status)
            assert not [h for h in resp.headers if h.lower().startswith("access-control-")], dict(resp.headers)
            await resp.read()


async def test_the_meter_api_keeps_every_type_origin_and_host(open_control: Client, twin: Twin) -> None:
    """The meter API is the device's: what libcurl or any client sends there is judged by meter-api.md only."""
    slot = twin.slot(S1)
    head = (
        f"POST /counter/v1/ocmf/tariff HTTP/1.1\nHost: attacker.example\nOrigin: {ATTACKER}\n"
        "Content-Type: text/plain\nContent-Length: 12\n"
    )
    status, headers, body = await raw_request(slot.port, head, b'{"TT":"0,4"}')
    assert (status, body) == (200, b'{"TT":"0,4"}')
    assert not [h for h in headers if h.startswith("access-control-")]
