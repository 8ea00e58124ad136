"""Fuzzed meter API: never a 5xx but the documented 503 meter_error, always a JSON error, and a refused
request leaves the meter exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.meter_api import create_meter_app
from iemdcr_twin.simulator.model import Meter, RamMemory, get_profile
from tests.support.clock import T0
from tests.support.fuzz import HEADERS, METHODS, PARSER_ONLY_METHODS, bodies, paths
from tests.support.meter import GW, SERIAL, USER, seeded_signer

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
BASE = "/counter/v1/ocmf/"
KNOWN_PATHS = [BASE + n for n in ("gw", "tariff", "metervalue", "publickey", "datetime", "user", "receipt")]
KNOWN_PATHS += [BASE + "transaction", "/counter/v2/ocmf/transaction", "/", "/counter/v1/ocmf"]
KNOWN_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "CT": st.sampled_from(["EVSEID", "", "a|b", "x" * 65]),
    "CI": st.sampled_from([GW["CI"], "", 5]),
    "TM": st.sampled_from(
        [GW["TM"], "2025-06-06T09:26:24", "9999-12-31T23:59:59,999+1400", "0001-01-01T00:00:00,000-1400"]
    ),
    "TT": st.sampled_from(["0.49 EUR/kWh", "", "x" * 251, None]),
    "TX": st.sampled_from(["B", "E", "b", "", 1]),
    **{key: st.just(value) for key, value in USER.items() if key not in ("ID",)},
    "ID": st.sampled_from(["04A1B2C3", "", "x" * 65, ["a"]]),
}
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def new_meter() -> tuple[Meter, SimClock]:
    clock = SimClock("virtual", 0, T0)
    return Meter(get_profile("iem-dcr-125"), SERIAL, clock.now, RamMemory(), seeded_signer()), clock


@SETTINGS
@given(method=METHODS, path=paths(KNOWN_PATHS), headers=HEADERS, body=bodies(KNOWN_KEYS), load=st.booleans())
async def test_fuzzed_requests_never_5xx_and_refusals_change_nothing(
    aiohttp_client: ClientFactory, method: str, path: str, headers: dict[str, str], body: bytes | None, load: bool
) -> None:
    meter, clock = new_meter()
    if load:
        meter.set_load(20.0, 400.0)
    client = await aiohttp_client(create_meter_app(MeterHost(meter, clock, Journal(100))))
    before = view.snapshot(meter)
    response = await client.request(method, path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
    raw = await response.read()
    await client.close()
    if method in PARSER_ONLY_METHODS:
        assert response.status == 400
        return
    assert response.status < 500 or (response.status == 503 and json.loads(raw)["error"] == "meter_error"), raw
    if response.status >= 400:
        if method != "HEAD" and method not in PARSER_ONLY_METHODS:
            error = json.loads(raw)
            assert set(error) == {"error", "message"} and "Traceback" not in error["message"]
        assert view.snapshot(meter) == before


@SETTINGS
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["GET", "POST"]), st.sampled_from(KNOWN_PATHS), bodies(KNOWN_KEYS)), max_size=12
    ),
    fault=st.sampled_from([None, "signature_unit_fault", "clock_lost", "tamper_detected"]),
)
async def test_fuzzed_sessions_on_a_charging_meter(
    aiohttp_client: ClientFactory, steps: list[tuple[str, str, bytes | None]], fault: str | None
) -> None:
    """Random sequences against a meter mid-session (gw, user, B done; maybe a fault)."""
    meter, clock = new_meter()
    meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    meter.post_receipt({"TX": "B"})
    if fault is not None:
        meter.raise_fault(fault)
    client = await aiohttp_client(create_meter_app(MeterHost(meter, clock, Journal(100))))
    for method, path, body in steps:
        before = view.snapshot(meter)
        response = await client.request(method, path, data=body)
        raw = await response.read()
        assert response.status < 500 or (response.status == 503 and json.loads(raw)["error"] == "meter_error"), raw
        if response.status >= 400:
            assert view.snapshot(meter) == before, (method, path, body, raw)
        clock.advance(1.0)
    await client.close()
