"""A small in-process stand-in for the meter API (meter-api.md), for the few answers the twin never gives.

Every other driver test runs against the real twin (``tests.support.twin``), whose faults, switches, power and
network faults (delay, status, hang, reset, malformed, refuse) cover a meter and a link in trouble. This fake
serves just enough of the API for the driver's init (gw, datetime, publickey, metervalue; anything else 404) and
exists for what neither the meter nor the twin ever sends:

- ``GET gw`` with ``"CT": ""`` or ``"CT": null`` while gw stays written (``override``): on a meter, CT is empty
  only after a restart, and then gw is not written either; JSON null never (driver.md fix 2,
  tests/driver/test_fixes.py::test_fix02_empty_ct_string_means_gw_not_set).
- ``WV`` without its zero padding, ``"1.040"`` (``pad_wv = False``): the meter pads to 8 integer digits, so the
  C++ parser's dropped first character only shows on an unpadded value (fix 3,
  test_fixes.py::test_fix03_energy_parses_the_whole_wv_string).
- ``GET metervalue`` bodies no meter sends (``override``): an HTML page, a JSON list, missing fields, a short RD,
  XT as a string; the twin's ``malformed`` network fault is only cut-off JSON
  (tests/driver/test_driver.py::test_bad_answers_never_crash_the_loop).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.clock import SimClock

PK = "3059301306072a8648ce3d020106082a8648ce3d03010703420004" + "ab" * 64


@dataclass
class Seen:
    method: str
    node: str  # e.g. "gw", "receipt"
    body: Any


@dataclass
class Override:
    body: str
    times: int  # answered this many times, then the meter answers normally again


@dataclass
class FakeMeter:
    clock: SimClock
    serial: str = "1ISA0200000001"
    pad_wv: bool = True
    tx_import_wh: int = 0  # the transaction registers WV, in Wh
    tx_export_wh: int = 0
    ct: str = ""
    ci: str = ""
    gw_written: bool = False
    time_local: datetime | None = None  # meter local time when written
    time_written_at: float = 0.0
    time_offset: str = "+0000"
    seen: list[Seen] = field(default_factory=list)
    overrides: dict[tuple[str, str], Override] = field(default_factory=dict)

    def override(self, method: str, node: str, *, body: str, times: int) -> None:
        """Answer the next ``times`` requests ``method node`` with 200 and ``body`` (JSON content type)."""
        self.overrides[(method, node)] = Override(body, times)

    def requests(self, method: str, node: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.node == node]

    def tm(self) -> str:
        if self.time_local is None:
            stamp = datetime.fromtimestamp(self.clock.now(), tz=UTC).replace(tzinfo=None)
            return stamp.strftime("%Y-%m-%dT%H:%M:%S,000") + "+0000 U"
        stamp = self.time_local + timedelta(seconds=self.clock.now() - self.time_written_at)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S,000") + self.time_offset + " I"

    def _set_time(self, tm: str) -> bool:
        try:
            local = datetime.strptime(tm[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return False
        if len(tm) != 28 or tm[19:23] != ",000" or tm[23] not in "+-":
            return False
        self.time_local = local
        self.time_written_at = self.clock.now()
        self.time_offset = tm[23:]
        return True

    def _wv(self, wh: int) -> str:
        return f"{wh // 1000:08d}.{wh % 1000:03d}" if self.pad_wv else f"{wh // 1000}.{wh % 1000:03d}"

    # ----- HTTP -----
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/counter/v1/ocmf/{node}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        node = request.match_info["node"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.seen.append(Seen(request.method, node, body))
        override = self.overrides.get((request.method, node))
        if override is not None:
            override.times -= 1
            if override.times <= 0:
                del self.overrides[(request.method, node)]
            return web.Response(text=override.body, content_type="application/json")
        handler = getattr(self, f"_{request.method.lower()}_{node}", None)
        if handler is None:
            return _error(404, "not_found")
        response: web.Response = handler(body)
        return response

    def _get_gw(self, body: Any) -> web.Response:
        return web.json_response({"CT": self.ct, "CI": self.ci, "TM": self.tm()})

    def _post_gw(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("CT", "CI", "TM")):
            return _error(400, "bad_request")
        if self.gw_written:
            return _error(428, "gw_already_set")
        if not self._set_time(body["TM"]):
            return _error(400, "bad_time")
        self.ct, self.ci, self.gw_written = body["CT"], body["CI"], True
        return web.json_response({"CT": self.ct, "CI": self.ci, "TM": self.tm()})

    def _post_datetime(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("TM"), str) or not self._set_time(body["TM"]):
            return _error(400, "bad_time")
        return web.json_response({"TM": self.tm()})

    def _get_publickey(self, body: Any) -> web.Response:
        return web.json_response({"SA": "ECDSA-secp256r1-SHA256", "PK": PK})

    def _get_metervalue(self, body: Any) -> web.Response:
        data = {
            "MS": self.serial,
            "TM": self.tm(),
            "EF": "",
            "ST": "G",
            "XT": False,
            "RD": [
                {"RV": "00000012.345", "RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"},
                {"RV": "00000000.000", "RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"},
                {"WV": self._wv(self.tx_import_wh), "WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"},
                {"WV": self._wv(self.tx_export_wh), "WI": "transaction_1-b:2.8.e", "WU": "kWh", "WT": "DC"},
            ],
            "U1": 0.01,
            "U2": 400.0,
            "U3": 0,
            "U4": 0,
            "I": 0.0,
            "P": 0.0,
            "XS": "0x0000000000000000",
            "XC": "0x0000, 0x00000000, 0x00, 0x00",
        }
        return web.json_response(data)


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code, "message": code.replace("_", " ")}, status=status)
