"""A charger written by hand: its HTTP calls to one meter, and the lab's calls to the twin's control port.

Used against a twin in-process (the conformance lab) and against a real ``iemdcr-sim serve`` process (e2e). A
charger like EVerest's talks libcurl: compact JSON, ``Content-Type: application/json`` on every request, GET too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.support.http import JSON_TYPE
from tests.support.twin import S1

PassTime = Callable[[float], Awaitable[None]]


class Charger:
    """Requests of a charger to the meter at ``meter_url`` and of a lab to the control API at ``control``."""

    def __init__(self, session: aiohttp.ClientSession, meter_url: str, control: str, serial: str = S1) -> None:
        self.session = session
        self.meter_url = meter_url
        self.control = control
        self.serial = serial

    # ---- the meter API -----------------------------------------------------------------------------------

    async def meter(self, method: str, node: str, body: Any = None, *, version: str = "v1") -> tuple[int, bytes]:
        """One request to ``/counter/{version}/ocmf/{node}``: its status and body as sent."""
        url = f"{self.meter_url}/counter/{version}/ocmf/{node}"
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        async with self.session.request(method, url, data=data, headers=JSON_TYPE) as resp:
            return resp.status, await resp.read()

    async def get(self, node: str) -> Any:
        status, raw = await self.meter("GET", node)
        assert status == 200, raw
        return json.loads(raw)

    async def post(self, node: str, body: Any, expect: int = 200) -> Any:
        status, raw = await self.meter("POST", node, body)
        assert status == expect, raw
        return json.loads(raw)

    async def text(self, node: str, *, version: str = "v1") -> bytes:
        status, raw = await self.meter("GET", node, version=version)
        assert status == 200, raw
        return raw

    # ---- the control API ---------------------------------------------------------------------------------

    async def lab(self, method: str, path: str, body: Any = None) -> Any:
        """A control-API call that must answer 200; its JSON body."""
        async with self.session.request(method, self.control + path, json=body) as resp:
            raw = await resp.read()
            assert resp.status == 200, raw
            return json.loads(raw)

    async def meter_state(self) -> Any:
        return await self.lab("GET", f"/api/meters/{self.serial}")

    async def load(self, **body: float) -> None:
        await self.lab("PUT", f"/api/meters/{self.serial}/load", body)

    async def advance(self, seconds: float) -> None:
        await self.lab("POST", "/api/clock/advance", {"seconds": seconds})

    async def freeze_clock(self) -> None:
        assert (await self.lab("PUT", "/api/clock", {"rate": 0}))["rate"] == 0

    # ---- a whole transaction -----------------------------------------------------------------------------

    async def charge(
        self,
        current: float,
        seconds: float,
        *,
        user: dict[str, Any] | None = None,
        pass_time: PassTime | None = None,
    ) -> bytes:
        """One transaction as a charger runs it; returns the receipt (the signed record, bytes as sent).

        With ``user``: first a defensive E (any answer) and the user block, what EVerest does. Then B, the load
        (``current`` A at 400 V), ``seconds`` pass (``pass_time``; default: the control API's clock advance),
        load off, E, GET receipt.
        """
        if user is not None:
            await self.meter("POST", "receipt", {"TX": "E"})
            await self.post("user", user)
        assert await self.post("receipt", {"TX": "B"}) == {"TX": "B", "XT": True}
        await self.load(current_A=current, voltage_V=400)
        await (pass_time or self.advance)(seconds)
        await self.load(current_A=0)
        assert await self.post("receipt", {"TX": "E"}) == {"TX": "E", "XT": False}
        return await self.text("receipt")
