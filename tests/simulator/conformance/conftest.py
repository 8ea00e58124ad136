"""A twin behind its control app, on a virtual clock that a test moves by hand, and a raw meter client.

The clock is ``virtual`` at rate 1 over a fake monotonic source: ``tick`` moves simulated time without a
clock jump (so polling intervals are judged), ``jump`` is the control API's advance (so they are not). The
wall clock is fake too (``WALL0`` plus the ticks): the lab is a foreign driver, so the TM it writes is judged
against wall time, and tests never depend on the real time of day.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from iemdcr_twin.simulator.model.timefmt import format_tm
from tests.simulator.helpers import GW, T0, USER

SERIAL = "1ISA0200000001"
V1 = "/counter/v1/ocmf/"
WALL0 = T0 + 0.25  # the fake wall clock at the start; the twin's simulated clock starts at T0


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Lab:
    """A test's hands: raw meter-API requests (a driver written by hand) and control-API calls."""

    def __init__(self, twin: Twin, control: TestClient, mono: FakeMonotonic, session: aiohttp.ClientSession) -> None:
        self.twin, self.control, self.mono, self.session = twin, control, mono, session

    @property
    def meter_url(self) -> str:
        return self.twin.slot(SERIAL).url

    def tick(self, seconds: float) -> None:
        """Simulated time passes as if the wall clock moved: no clock jump."""
        self.mono.t += seconds

    def wall(self) -> float:
        return WALL0 + self.mono.t

    def tm(self, offset_s: float = 0.0) -> str:
        """The wall time (what a foreign driver writes) as a TM at +0100, ``offset_s`` off the truth."""
        return format_tm(self.wall() + offset_s, 60)

    def gw_body(self, **changes: Any) -> dict[str, Any]:
        return {**GW, "TM": self.tm(), **changes}

    async def jump(self, seconds: float) -> None:
        await self.control_ok("POST", "/api/clock/advance", {"seconds": seconds})

    async def get(self, node: str) -> int:
        async with self.session.get(self.meter_url + V1 + node) as resp:
            await resp.read()
            return resp.status

    async def post(self, node: str, body: Any) -> int:
        async with self.session.post(self.meter_url + V1 + node, data=json.dumps(body)) as resp:
            await resp.read()
            return resp.status

    async def control_ok(self, method: str, path: str, body: Any = None) -> Any:
        resp = await self.control.request(method, path, json=body)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def report(self) -> dict[str, Any]:
        report: dict[str, Any] = await self.control_ok("GET", f"/api/meters/{SERIAL}/conformance")
        return report

    async def verdicts(self) -> dict[str, str]:
        return {check["id"]: check["verdict"] for check in (await self.report())["checks"]}

    # ---- the steps of a well-behaved driver ------------------------------------------------------------

    async def init(self, ct: str = "EVSEID") -> None:
        assert await self.get("gw") == 200
        assert await self.post("gw", self.gw_body(CT=ct)) == 200
        assert await self.post("tariff", {"TT": "0.49 EUR/kWh"}) == 200
        assert await self.get("publickey") == 200
        assert await self.get("metervalue") == 200

    async def poll(self, seconds: int) -> None:
        for _ in range(seconds):
            self.tick(1.0)
            assert await self.get("metervalue") == 200

    async def charge(self, user: dict[str, Any] | None = None) -> None:
        """Defensive E, user block, B, charge, E, fetch the receipt: what EVerest does."""
        await self.post("receipt", {"TX": "E"})
        assert await self.post("user", user or USER) == 200
        assert await self.post("receipt", {"TX": "B"}) == 200
        await self.control_ok("PUT", f"/api/meters/{SERIAL}/load", {"current_A": 50.0, "voltage_V": 400.0})
        await self.poll(5)
        await self.control_ok("PUT", f"/api/meters/{SERIAL}/load", {"current_A": 0.0})
        assert await self.post("receipt", {"TX": "E"}) == 200
        assert await self.get("receipt") == 200


@pytest.fixture
async def lab(aiohttp_client: Any) -> AsyncIterator[Lab]:
    mono = FakeMonotonic()
    clock = SimClock("virtual", 1.0, T0, monotonic=mono, wall=lambda: WALL0 + mono.t)
    twin = Twin(clock, seed="conformance", journal_size=1000)
    twin.add_meter(MeterSpec(port=0))
    control = await aiohttp_client(create_control_app(twin))
    async with aiohttp.ClientSession() as session:
        yield Lab(twin, control, mono, session)
