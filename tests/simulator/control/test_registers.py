"""``PUT /api/meters/{serial}/registers``: test labs start the registers near the wrap (docs/persistence.md);
the meter API has no such node."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import Twin
from tests.support.http import json_error, json_ok
from tests.support.meter import GW, USER
from tests.support.twin import S1

Client = TestClient[Any, Any]
REGISTERS = f"/api/meters/{S1}/registers"


async def test_registers_are_set_near_the_wrap_and_count_across_it(
    twin: Twin, control: Client, clock: SimClock
) -> None:
    body = await json_ok(await control.put(REGISTERS, json={"import_mWh": 99_999_990_000_000, "export_mWh": 5}))
    assert (body["import_kWh"], body["export_mWh"]) == ("99999990.000", 5)
    meter = twin.slot(S1).meter
    meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    meter.post_receipt({"TX": "B"})
    await json_ok(await control.put(f"/api/meters/{S1}/load", json={"current_A": 125.0, "voltage_V": 800.0}))
    clock.advance(12 * 60)
    state = await json_ok(await control.get(f"/api/meters/{S1}"))
    assert state["registers"]["import_kWh"] == "00000010.000"
    assert state["registers"]["transaction_import_mWh"] == 20_000_000
    await json_error(await control.put(REGISTERS, json={"import_mWh": 0}), 428, "transaction_running")


@pytest.mark.parametrize(
    ("body", "code", "word"),
    [
        ({"import_mWh": 10**14}, "bad_value", "import_mWh must be a whole number from 0 to 99999999999999"),
        ({"export_mWh": -1}, "bad_value", "export_mWh"),
        ({"import_mWh": "5"}, "bad_value", "import_mWh"),
        ({"import_kWh": 5}, "unknown_key", "import_kWh"),
    ],
)
async def test_bad_register_values_are_refused_and_change_nothing(
    twin: Twin, control: Client, body: dict[str, Any], code: str, word: str
) -> None:
    await json_error(await control.put(REGISTERS, json=body), 400, code, word)
    assert twin.slot(S1).meter.registers.import_uj == 0


async def test_the_meter_api_cannot_set_registers(twin: Twin, control: Client) -> None:
    url = twin.slot(S1).url + "/counter/v1/ocmf/registers"
    async with aiohttp.ClientSession() as session, session.put(url, json={"import_mWh": 5}) as resp:
        assert resp.status in (404, 405)
    assert twin.slot(S1).meter.registers.import_uj == 0
