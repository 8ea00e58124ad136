"""The conformance lab: a twin behind its control app on a hand-moved clock, and a driver written by hand.

The clock is ``virtual`` at rate 1 over a fake monotonic source: ``tick`` moves simulated time without a
clock jump (so polling intervals are judged), ``jump`` is the control API's advance (so they are not). The
wall clock is fake too (``WALL0`` plus the ticks): the lab is a foreign driver, so the TM it writes is judged
against wall time, and tests never depend on the real time of day.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model.timefmt import format_tm
from tests.support.charger import Charger
from tests.support.clock import T0, FakeTime
from tests.support.meter import GW, USER
from tests.support.twin import S1

SERIAL = S1
WALL0 = T0 + 0.25  # the fake wall clock at the start; the twin's simulated clock starts at T0


def check_of(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    """One check of a conformance report by its id."""
    return next(check for check in report["checks"] if check["id"] == check_id)


class Lab:
    """A test's hands: raw meter-API requests (a driver written by hand) and control-API calls."""

    def __init__(self, twin: Twin, control: TestClient[Any, Any], mono: FakeTime, charger: Charger) -> None:
        self.twin, self.control, self.mono, self.charger = twin, control, mono, charger

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
        status, _ = await self.charger.meter("GET", node)
        return status

    async def post(self, node: str, body: Any) -> int:
        status, _ = await self.charger.meter("POST", node, body)
        return status

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
        """Defensive E, user block, B, 50 A polled for 5 s, E, fetch the receipt: what EVerest does."""
        await self.charger.charge(50.0, 5, user=user or USER, pass_time=lambda seconds: self.poll(round(seconds)))
