"""Fuzzed control API: never a 5xx but the documented 503 of /healthz, always a JSON error without a
traceback, and a refused request leaves the twin exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model.faults import BY_NAME
from tests.support.fuzz import HEADERS, METHODS, PARSER_ONLY_METHODS, bodies, paths
from tests.support.twin import S1, new_twin

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
M = f"/api/meters/{S1}"
KNOWN_PATHS = [
    "/healthz",
    "/api/meters",
    M,
    M + "/load",
    M + "/profile",
    M + "/power",
    M + "/power-cycle",
    "/api/faults",
    *(M + "/faults/" + name for name in BY_NAME),
    M + "/faults/nope",
    "/api/clock",
    "/api/clock/advance",
    M + "/journal",
    M + "/journal?since=-1&limit=x",
    M + "/records",
    M + "/records?format=safe-xml&pg=T99",
    M + "/next-record",
    M + "/factory-reset",
    M + "/network",
    M + "/conformance",
    "/api/meters/1ISA0299999999/load",
    "/metrics",
    "/api/openapi.json",
    "/",
    "/static/../../etc/passwd",
]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=5),
)
KNOWN_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "current_A": NUMBERS,
    "voltage_V": NUMBERS,
    "ramp_s": NUMBERS,
    "on": st.one_of(st.booleans(), st.none(), st.just("true")),
    "off_ms": NUMBERS,
    "mode": st.sampled_from(["real", "virtual", "fake", 1]),
    "rate": NUMBERS,
    "seconds": NUMBERS,
    "activation_threshold_A": NUMBERS,
    "signature_delay_ms": NUMBERS,
    "kind": st.sampled_from(["wrong_key", "flipped_byte", "nope", None]),
    "seed": st.one_of(st.integers(), st.text(max_size=4)),
    "rules": st.lists(
        st.fixed_dictionaries(
            {"action": st.sampled_from(["delay", "status", "reset", "malformed", "refuse", "nope"])},
            optional={
                "status": st.integers(-5, 1000),
                "delay_ms": NUMBERS,
                "count": NUMBERS,
                "path": st.text(max_size=8),
            },
        ),
        max_size=3,
    ),
}
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def state_of(twin: Twin) -> dict[str, Any]:
    """Everything a control request could change, as plain data."""
    clock = twin.clock.as_dict()
    clock.pop("pending_sleepers", None)
    return {
        "clock": clock,
        "meters": {
            serial: {**view.snapshot(slot.meter), "listening": slot.listening, "records": len(slot.meter.records)}
            for serial, slot in twin.slots.items()
        },
    }


@SETTINGS
@given(method=METHODS, path=paths(KNOWN_PATHS), headers=HEADERS, body=bodies(KNOWN_KEYS))
async def test_fuzzed_control_requests_never_5xx_and_refusals_change_nothing(
    aiohttp_client: ClientFactory, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> None:
    twin = new_twin(2)
    client = await aiohttp_client(create_control_app(twin))
    try:
        before = state_of(twin)
        response = await client.request(method, path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
        raw = await response.read()
        if method in PARSER_ONLY_METHODS:
            assert response.status == 400
            return
        assert response.status < 500 or (response.status == 503 and path.startswith("/healthz")), raw
        if response.status >= 400:
            if method != "HEAD":
                error = json.loads(raw)
                assert {"error", "message"} <= set(error) and "Traceback" not in raw.decode(errors="replace")
            assert state_of(twin) == before, (method, path, body, raw[:300])
    finally:
        await client.close()
