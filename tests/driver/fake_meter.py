"""A small in-process stand-in for the IEM-DCR meter API (meter-api.md), plus knobs for bad answers.

It follows the wire contract closely enough for the driver's tests, and can also misbehave in ways a
well-behaved twin never does: hang, answer non-JSON, send a short RD, unpadded WV, 500s.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

HEALTHY = "0x0000, 0x00000000, 0x00, 0x00"
PK = "3059301306072a8648ce3d020106082a8648ce3d03010703420004" + "ab" * 64


@dataclass
class Seen:
    method: str
    node: str  # e.g. "gw", "receipt", "v2/transaction"
    body: Any
    at: float = 0.0  # virtual time when seen


@dataclass
class Override:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    hang: bool = False
    close: bool = False
    times: int | None = None  # None: forever


@dataclass
class FakeMeter:
    clock: Any
    serial: str = "1ISA0200000001"
    current_a: float = 0.0
    voltage_v: float = 400.0
    xc: str = HEALTHY
    threshold_a: float = 1.0
    pad_wv: bool = True
    v1_transaction: bool = True
    powered: bool = True
    # volatile state
    ct: str = ""
    ci: str = ""
    gw_written: bool = False
    time_local: datetime | None = None  # meter local time when written
    time_written_at: float = 0.0
    time_offset: str = "+0000"
    tariff: str = ""
    user: dict[str, Any] | None = None
    xt: bool = False
    tx_import_mwh: int = 0
    tx_export_mwh: int = 0
    receipt: str | None = None
    # non-volatile
    records: list[str] = field(default_factory=list)
    pagination: int = 0
    seen: list[Seen] = field(default_factory=list)
    overrides: dict[tuple[str, str], Override] = field(default_factory=dict)

    # ----- knobs -----
    def override(self, method: str, node: str, **kwargs: Any) -> None:
        self.overrides[(method, node)] = Override(**kwargs)

    def clear_overrides(self) -> None:
        self.overrides.clear()

    def power_cycle(self) -> None:
        if self.xt:
            self._end("P")
        self.ct = self.ci = ""
        self.gw_written = False
        self.time_local = None
        self.time_offset = "+0000"
        self.tariff = ""
        self.user = None
        self.receipt = None
        self.tx_import_mwh = self.tx_export_mwh = 0

    def requests(self, method: str | None = None, node: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and (node is None or s.node == node)]

    # ----- model -----
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

    def _wv(self, mwh: int) -> str:
        return f"{mwh // 1000:08d}.{mwh % 1000:03d}" if self.pad_wv else f"{mwh // 1000}.{mwh % 1000:03d}"

    def _end(self, reason: str) -> str:
        self.pagination += 1
        user = self.user or {}
        payload = {"PG": f"T{self.pagination}", "MS": self.serial, "CT": self.ct, "CI": self.ci, "ID": user.get("ID")}
        record = (
            "OCMF|" + json.dumps(payload, separators=(",", ":")) + "|" + '{"SA":"ECDSA-secp256r1-SHA256","SD":"30"}'
        )
        record += f"#{reason}"
        self.records.append(record)
        self.receipt = record
        self.xt = False
        return record

    # ----- HTTP -----
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/counter/{version}/ocmf/{node}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        node = request.match_info["node"] if version == "v1" else f"{version}/{request.match_info['node']}"
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.seen.append(Seen(request.method, node, body, self.clock.now()))
        if not self.powered:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        override = self.overrides.get((request.method, node))
        if override is not None:
            if override.times is not None:
                override.times -= 1
                if override.times <= 0:
                    del self.overrides[(request.method, node)]
            if override.hang:
                await asyncio.Event().wait()
            if override.close:
                assert request.transport is not None
                request.transport.close()
            return web.Response(status=override.status, text=override.body, content_type=override.content_type)
        handler = getattr(self, f"_{request.method.lower()}_{node.replace('/', '_')}", None)
        if handler is None:
            return _error(404, "not_found")
        return handler(body)

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

    def _post_tariff(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("TT"), str):
            return _error(400, "bad_request")
        if self.xt:
            return _error(428, "transaction_running")
        self.tariff = body["TT"]
        return web.json_response({"TT": self.tariff})

    def _post_datetime(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("TM"), str):
            return _error(400, "bad_request")
        if self.xt:
            return _error(428, "transaction_running")
        if not self._set_time(body["TM"]):
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
            "XT": self.xt,
            "RD": [
                {"RV": "00000012.345", "RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"},
                {"RV": "00000000.000", "RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"},
                {"WV": self._wv(self.tx_import_mwh), "WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"},
                {"WV": self._wv(self.tx_export_mwh), "WI": "transaction_1-b:2.8.e", "WU": "kWh", "WT": "DC"},
            ],
            "U1": 0.01,
            "U2": self.voltage_v,
            "U3": 0,
            "U4": 0,
            "I": self.current_a,
            "P": self.voltage_v * self.current_a,
            "XS": "0x0000000000000000",
            "XC": self.xc,
        }
        return web.json_response(data)

    def _post_user(self, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return _error(400, "bad_request")
        if self.xt:
            return _error(428, "transaction_running")
        self.user = body
        if body.get("TT"):
            self.tariff = body["TT"]
        return web.json_response(body)

    def _post_receipt(self, body: Any) -> web.Response:
        tx = body.get("TX") if isinstance(body, dict) else None
        if tx not in ("B", "E"):
            return _error(400, "bad_tx")
        if self.xc != HEALTHY:
            return _error(503, "meter_error")
        if abs(self.current_a) > self.threshold_a:
            return _error(428, "current_above_threshold")
        if tx == "B":
            if not self.gw_written:
                return _error(428, "gw_not_set")
            if self.xt:
                return _error(428, "transaction_running")
            self.xt = True
            self.tx_import_mwh = self.tx_export_mwh = 0
        else:
            if not self.xt:
                return _error(428, "no_transaction")
            self._end("r")
        return web.json_response({"TX": tx, "XT": self.xt})

    def _get_receipt(self, body: Any) -> web.Response:
        if self.receipt is None:
            return _error(404, "no_record")
        return web.Response(text=self.receipt, content_type="text/plain")

    def _get_transaction(self, body: Any) -> web.Response:
        if not self.v1_transaction or not self.records:
            return _error(404, "no_record")
        return web.Response(text=self.records[-1], content_type="text/plain")

    def _get_v2_transaction(self, body: Any) -> web.Response:
        if not self.records:
            return _error(404, "no_record")
        return web.Response(text=self.records[-1], content_type="text/plain")


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code, "message": code.replace("_", " ")}, status=status)
