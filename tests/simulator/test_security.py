"""The control token (control-api.md §1): every control route but the public ones needs it; meters never do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.control_api import create_control_app
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.openapi import app_routes
from iemdcr_twin.simulator.security import TOKEN_ENV, token_from_env
from tests.simulator.twin_helpers import S1, json_error, json_ok, meter_url, new_twin

Client = TestClient[Any, Any]
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = {("GET", "/healthz"), ("GET", "/"), ("GET", "/static/{path}")}


@pytest.fixture
def twin() -> Twin:
    return new_twin()


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
    if ("GET", "/api/events") not in app_routes(control.app):
        pytest.skip("the event stream is not registered in this build")
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
    assert token_from_env(None) is None
