"""Network faults on the meter ports (control-api.md §2 ``/network``): rules, matching, counts, seeded chance."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.cli import JsonLogFormatter
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.network_faults import NetworkFaults, parse_rules
from tests.support.http import JSON_TYPE, json_error, json_ok, until
from tests.support.twin import S1, S2, meter_url, new_twin, raw_get

Client = TestClient[Any, Any]
NETWORK = f"/api/meters/{S1}/network"


@pytest.fixture
def twin() -> Twin:
    return new_twin(2)


async def put_rules(control: Client, rules: list[dict[str, Any]], seed: int | str = 0) -> Any:
    return await json_ok(await control.put(NETWORK, json={"seed": seed, "rules": rules}))


async def get_status(device: aiohttp.ClientSession, twin: Twin, node: str = "metervalue") -> int:
    async with device.get(meter_url(twin, node)) as resp:
        await resp.read()
        return resp.status


# ---- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"rules": "x"}, "bad_type", ["rules"]),
        ({"seed": 1.5, "rules": []}, "bad_type", ["seed"]),
        ({"rules": [], "extra": 1}, "unknown_key", ["extra"]),
        ({"rules": [{"action": "explode"}]}, "bad_value", ["rules[0].action"]),
        ({"rules": [{"action": "hang", "when": 1}]}, "unknown_key", ["rules[0]", "when"]),
        ({"rules": [{"action": "delay"}]}, "missing_key", ["rules[0].delay_ms"]),
        ({"rules": [{"action": "delay", "delay_ms": -1}]}, "bad_value", ["rules[0].delay_ms"]),
        ({"rules": [{"action": "delay", "delay_ms": "5"}]}, "bad_type", ["rules[0].delay_ms"]),
        ({"rules": [{"action": "status"}]}, "bad_value", ["rules[0].status"]),
        ({"rules": [{"action": "status", "status": 99}]}, "bad_value", ["rules[0].status"]),
        ({"rules": [{"action": "reset", "status": 500}]}, "bad_value", ["rules[0].status"]),
        ({"rules": [{"action": "hang"}, {"action": "reset", "count": 0}]}, "bad_value", ["rules[1].count"]),
        ({"rules": [{"action": "reset", "count": True}]}, "bad_value", ["rules[0].count"]),
        ({"rules": [{"action": "reset", "probability": 1.5}]}, "bad_value", ["rules[0].probability"]),
        ({"rules": [{"action": "reset", "method": "G E T"}]}, "bad_value", ["rules[0].method"]),
        ({"rules": [{"action": "reset", "path": ""}]}, "bad_value", ["rules[0].path"]),
        ({"rules": [7]}, "bad_type", ["rules[0]"]),
    ],
)
async def test_bad_bodies_are_400_naming_the_key_and_change_nothing(
    control: Client, twin: Twin, body: dict[str, Any], code: str, words: list[str]
) -> None:
    before = await put_rules(control, [{"action": "malformed", "path": "tariff"}], seed=3)
    await json_error(await control.put(NETWORK, json=body), 400, code, *words)
    assert await json_ok(await control.get(NETWORK)) == before


async def test_not_json_unknown_meter_and_wrong_method(control: Client) -> None:
    await json_error(await control.put(NETWORK, data=b"[1,", headers=JSON_TYPE), 400, "bad_json")
    await json_error(await control.put("/api/meters/1ISA0299999999/network", json={"rules": []}), 404, "unknown_meter")
    await json_error(await control.post(NETWORK, json={"rules": []}), 405, "method_not_allowed")


# ---- actions ---------------------------------------------------------------------------------------------


async def test_status_answers_json_error_without_touching_the_model_and_count_runs_out(
    control: Client, twin: Twin, device: aiohttp.ClientSession
) -> None:
    meter = twin.slot(S1).meter
    await put_rules(control, [{"action": "status", "status": 503, "method": "POST", "path": "gw", "count": 2}])
    gw = {"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"}
    for _ in range(2):
        async with device.post(meter_url(twin, "gw"), json=gw) as resp:
            body = await json_error(resp, 503, "network_status")
            assert body["message"]
    assert meter.gw_written is False
    assert await get_status(device, twin, "gw") == 200  # GET gw never matched
    async with device.post(meter_url(twin, "gw"), json=gw) as resp:
        assert resp.status == 200
    assert meter.gw_written is True
    state = await json_ok(await control.get(NETWORK))
    assert state["rules"] == [] and state["fired"]["status"] == 2
    assert twin.slot(S1).host.interceptor is None  # no rules, no cost
    journal = [e for e in twin.slot(S1).host.journal.entries() if e.method == "POST"]
    assert [(e.status, e.error) for e in journal] == [(503, "network_status")] * 2 + [(200, None)]


async def test_first_matching_rule_applies_and_globs_match_path_or_node(
    control: Client, twin: Twin, device: aiohttp.ClientSession
) -> None:
    await put_rules(
        control,
        [
            {"action": "status", "status": 500, "path": "/counter/v1/ocmf/g?"},
            {"action": "status", "status": 502, "path": "tar*"},
            {"action": "status", "status": 504, "method": "get"},
        ],
    )
    assert await get_status(device, twin, "gw") == 500
    assert await get_status(device, twin, "tariff") == 502
    assert await get_status(device, twin, "metervalue") == 504
    async with device.post(meter_url(twin, "tariff"), json={"TT": "x"}) as resp:
        assert resp.status == 502
    async with device.get(meter_url(twin, "metervalue", S2)) as resp:
        assert resp.status == 200  # the other meter is untouched


async def test_delay_waits_simulation_time(control: Client, twin: Twin, device: aiohttp.ClientSession) -> None:
    clock = twin.clock
    await put_rules(control, [{"action": "delay", "delay_ms": 30_000, "path": "metervalue", "count": 1}])
    request = asyncio.ensure_future(get_status(device, twin))
    await until(lambda: clock.next_deadline() is not None)
    assert not request.done()
    start = clock.now()
    clock.advance(30)
    assert await request == 200
    assert clock.now() - start == 30
    entry = twin.slot(S1).host.journal.entries()[-1]
    assert (entry.status, entry.error) == (200, None)


async def test_malformed_is_200_with_a_body_that_is_not_json(
    control: Client, twin: Twin, device: aiohttp.ClientSession
) -> None:
    await put_rules(control, [{"action": "malformed", "path": "metervalue"}])
    async with device.get(meter_url(twin, "metervalue")) as resp:
        assert resp.status == 200
        with pytest.raises(ValueError):
            await resp.json()
    entry = twin.slot(S1).host.journal.entries()[-1]
    assert (entry.status, entry.error) == (200, "network_malformed")


@pytest.mark.parametrize("action", ["reset", "refuse"])
async def test_reset_and_refuse_close_without_an_answer(
    control: Client, twin: Twin, device: aiohttp.ClientSession, action: str
) -> None:
    meter = twin.slot(S1).meter
    meter.post_gw({"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"})
    await put_rules(control, [{"action": action, "path": "receipt", "count": 1}])
    with pytest.raises(aiohttp.ClientError):
        async with device.post(meter_url(twin, "receipt"), json={"TX": "B"}) as resp:
            await resp.read()
    assert meter.transaction is None
    entry = twin.slot(S1).host.journal.entries()[-1]
    assert (entry.status, entry.error) == (0, f"network_{action}")
    async with device.post(meter_url(twin, "receipt"), json={"TX": "B"}) as resp:
        assert resp.status == 200  # count spent: the next one goes through
    assert meter.transaction is not None


async def test_reset_on_a_get_sends_no_bytes(control: Client, twin: Twin) -> None:
    await put_rules(control, [{"action": "reset", "path": "metervalue", "count": 1}])
    assert await raw_get(twin, "metervalue") == b""
    assert (await raw_get(twin, "metervalue")).startswith(b"HTTP/1.1 200")


async def test_hang_ends_when_rules_are_cleared(control: Client, twin: Twin, device: aiohttp.ClientSession) -> None:
    await put_rules(control, [{"action": "hang", "path": "metervalue"}])
    request = asyncio.ensure_future(raw_get(twin, "metervalue"))
    await until(lambda: NetworkFaults.of(twin.slot(S1).host).fired["hang"] == 1)
    assert not request.done()
    await json_ok(await control.delete(NETWORK))
    assert await request == b""
    entry = twin.slot(S1).host.journal.entries()[-1]
    assert (entry.status, entry.error) == (0, "network_hang")
    assert await get_status(device, twin) == 200


async def test_hang_ends_when_the_meter_powers_off(control: Client, twin: Twin, device: aiohttp.ClientSession) -> None:
    await put_rules(control, [{"action": "hang"}])
    request = asyncio.ensure_future(raw_get(twin, "metervalue"))
    await until(lambda: NetworkFaults.of(twin.slot(S1).host).fired["hang"] == 1)
    await json_ok(await control.post(f"/api/meters/{S1}/power", json={"on": False}))
    assert await request == b""
    await until(lambda: twin.slot(S1).host.journal.last_seq == 1)
    assert twin.slot(S1).host.journal.entries()[-1].error == "network_hang"


# ---- probability -----------------------------------------------------------------------------------------


async def test_probability_is_reproducible_with_a_seed(
    control: Client, twin: Twin, device: aiohttp.ClientSession
) -> None:
    rule = {"action": "status", "status": 503, "probability": 0.5}

    async def outcomes(seed: int) -> list[int]:
        await put_rules(control, [rule], seed=seed)
        return [await get_status(device, twin) for _ in range(24)]

    first = await outcomes(11)
    assert set(first) == {200, 503}
    assert await outcomes(11) == first
    assert await outcomes(12) != first


def test_probability_and_count_spend_only_when_applied() -> None:
    faults = NetworkFaults(new_twin().slot(S1).host)
    seed, rules = parse_rules({"seed": 5, "rules": [{"action": "reset", "probability": 0.5, "count": 3}]})
    faults.replace(seed, rules)
    picks = [faults.pick("GET", "/counter/v1/ocmf/metervalue") is not None for _ in range(40)]
    assert sum(picks) == 3
    assert faults.rules == []
    assert picks != [True, True, True] + [False] * 37  # some draws lost before the count ran out


async def test_injected_faults_are_logged_as_structured_json(
    control: Client, twin: Twin, device: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    await put_rules(control, [{"action": "status", "status": 500, "count": 1}])
    with caplog.at_level(logging.INFO, logger="iemdcr.network"):
        assert await get_status(device, twin, "gw") == 500
    record = next(r for r in caplog.records if r.name == "iemdcr.network")
    line = json.loads(JsonLogFormatter().format(record))
    assert line["meter"] == S1 and line["fault"] == "status"
    assert line["path"] == "/counter/v1/ocmf/gw" and line["level"] == "INFO"
