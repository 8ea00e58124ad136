"""The control API (control-api.md §2) over HTTP, against a Twin whose meters listen on real TCP ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from iemdcr_twin.simulator import limits
from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.control.errors import MAX_CONTROL_BODY
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model import CATALOGUE
from tests.support.clock import T0
from tests.support.http import JSON_TYPE, V1, assert_408_and_closed, send_raw, until
from tests.support.meter import GW, HEALTHY_XC, USER
from tests.support.twin import S1, S2, new_twin

Client = TestClient[Any, Any]
ServerFactory = Callable[..., Awaitable[TestServer]]

METER = f"/api/meters/{S1}"
FAULT_NAMES = ["sensor_unit_fault", "voltage_out_of_range", "tamper_detected", "clock_lost", "signature_unit_fault"]


@pytest.fixture
def twin(clock: SimClock) -> Twin:
    return new_twin(2, clock, journal_size=50)


@pytest.fixture
async def device(control: Client) -> AsyncIterator[aiohttp.ClientSession]:
    """A libcurl-like client for the meter ports: a new connection per request."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def ok(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    assert resp.status == 200, raw
    assert resp.headers["Content-Type"].startswith("application/json")
    return json.loads(raw)


async def expect_error(resp: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    raw = await resp.read()
    assert resp.status == status, raw
    assert "Traceback" not in raw.decode()
    body: dict[str, Any] = json.loads(raw)
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def meter_url(twin: Twin, serial: str, node: str) -> str:
    return twin.slot(serial).url + V1 + node


async def meter_get(device: aiohttp.ClientSession, twin: Twin, node: str, serial: str = S1) -> Any:
    async with device.get(meter_url(twin, serial, node)) as resp:
        assert resp.status == 200
        return await resp.json()


async def meter_post(
    device: aiohttp.ClientSession, twin: Twin, node: str, body: dict[str, Any], serial: str = S1
) -> tuple[int, Any]:
    async with device.post(meter_url(twin, serial, node), json=body) as resp:
        return resp.status, await resp.json()


async def refused(device: aiohttp.ClientSession, twin: Twin, serial: str = S1) -> bool:
    try:
        async with device.get(meter_url(twin, serial, "metervalue")):
            return False
    except aiohttp.ClientConnectorError:
        return True


# ---- health, meters --------------------------------------------------------------------------------------


async def test_healthz(control: Client, twin: Twin) -> None:
    assert await ok(await control.get("/healthz")) == {"ok": True}
    await twin.slot(S2).close()  # powered but not listening
    body = await (await control.get("/healthz")).json()
    assert body == {"ok": False, "not_listening": [S2]}
    assert (await control.get("/healthz")).status == 503
    await twin.slot(S2).open()
    assert await ok(await control.get("/healthz")) == {"ok": True}


async def test_list_meters(control: Client, twin: Twin) -> None:
    body = await ok(await control.get("/api/meters"))
    assert list(body) == ["meters"]
    assert [list(m) for m in body["meters"]] == [["serial", "model", "url", "powered", "transaction"]] * 2
    assert [m["serial"] for m in body["meters"]] == [S1, S2]
    first = body["meters"][0]
    assert first["model"] == "IEM-DCR-125-1000-32-00-006-B_000"
    assert first["url"] == twin.slot(S1).url
    assert first["url"] != body["meters"][1]["url"]
    assert first["powered"] is True and first["transaction"] is False


async def test_meter_detail(control: Client, twin: Twin, device: aiohttp.ClientSession) -> None:
    body = await ok(await control.get(METER))
    slot = twin.slot(S1)
    assert body["serial"] == S1
    assert body["url"] == slot.url and body["port"] == slot.port != 0
    assert body["public_key"] == slot.meter.signer.public_key_hex
    assert body["clock"]["status"] == "U"
    assert body["gw"] == {"written": False, "CT": "", "CI": ""}
    assert body["registers"]["import_kWh"] == "00000000.000"
    assert body["pagination"] == {"next": 1}
    assert body["faults"] == []
    assert body["status"]["XC"] == HEALTHY_XC
    assert (await meter_post(device, twin, "gw", GW))[0] == 200
    body = await ok(await control.get(METER))
    assert body["gw"] == {"written": True, "CT": GW["CT"], "CI": GW["CI"]}
    assert body["clock"]["status"] == "I"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/meters/1ISA0299999999"),
        ("PUT", "/api/meters/nope/load"),
        ("PATCH", "/api/meters/nope/profile"),
        ("POST", "/api/meters/nope/power"),
        ("POST", "/api/meters/nope/power-cycle"),
        ("PUT", "/api/meters/nope/faults/clock_lost"),
        ("DELETE", "/api/meters/nope/faults/clock_lost"),
        ("GET", "/api/meters/nope/journal"),
        ("DELETE", "/api/meters/nope/journal"),
    ],
)
async def test_unknown_serial_is_404(control: Client, method: str, path: str) -> None:
    resp = await control.request(method, path, json={"on": True, "current_A": 1.0})
    body = await expect_error(resp, 404, "unknown_meter")
    assert path.split("/")[3] in body["message"]


async def test_unknown_route_and_wrong_method(control: Client) -> None:
    await expect_error(await control.get("/api/nope"), 404, "not_found")
    await expect_error(await control.get("/counter/v1/ocmf/gw"), 404, "not_found")
    await expect_error(await control.post("/api/meters"), 405, "method_not_allowed")
    await expect_error(await control.get(METER + "/load"), 405, "method_not_allowed")
    await expect_error(await control.delete("/api/clock"), 405, "method_not_allowed")


# ---- load --------------------------------------------------------------------------------------------------


async def test_put_load_sets_and_keeps_omitted_values(control: Client, twin: Twin, clock: SimClock) -> None:
    body = await ok(await control.put(METER + "/load", json={"current_A": 100, "voltage_V": 400}))
    assert (body["current_A"], body["voltage_V"], body["power_W"]) == (100.0, 400.0, 40000.0)
    body = await ok(await control.put(METER + "/load", json={"current_A": 50}))
    assert (body["current_A"], body["voltage_V"]) == (50.0, 400.0)
    body = await ok(await control.put(METER + "/load", json={}))
    assert (body["current_A"], body["voltage_V"]) == (50.0, 400.0)
    clock.advance(3600)
    assert view.snapshot(twin.slot(S1).meter)["registers"]["import_mWh"] == 20_000_000  # 20 kW for 1 h


async def test_put_load_with_ramp(control: Client, device: aiohttp.ClientSession, twin: Twin, clock: SimClock) -> None:
    await ok(await control.put(METER + "/load", json={"voltage_V": 400}))
    body = await ok(await control.put(METER + "/load", json={"current_A": 100, "ramp_s": 10}))
    assert body["power_W"] == 0.0 and body["ramp_until"] == clock.now() + 10
    clock.advance(5)
    assert (await meter_get(device, twin, "metervalue"))["I"] == 50.0
    clock.advance(5)
    value = await meter_get(device, twin, "metervalue")
    assert value["I"] == 100.0
    # 0 -> 100 A over 10 s at 400 V: 200 kJ = 55.555 Wh, truncated
    assert value["RD"][0]["RV"] == "00000000.055"


async def test_a_negative_voltage_is_refused_and_changes_nothing(control: Client, twin: Twin, clock: SimClock) -> None:
    """A DC meter's voltage is at least 0: -400 V with -100 A used to give +40 kW counted as import."""
    await ok(await control.put(METER + "/load", json={"current_A": 10, "voltage_V": 400}))
    before = view.snapshot(twin.slot(S1).meter)
    body = await expect_error(
        await control.put(METER + "/load", json={"current_A": -100, "voltage_V": -400}), 400, "bad_value"
    )
    assert "voltage_V" in body["message"]
    assert view.snapshot(twin.slot(S1).meter) == before
    await ok(await control.put(METER + "/load", json={"current_A": -100, "voltage_V": 0}))  # 0 V is a voltage
    body = await ok(await control.put(METER + "/load", json={"current_A": -100, "voltage_V": 400}))  # export
    assert body["power_W"] == -40000.0
    clock.advance(3600)
    registers = view.snapshot(twin.slot(S1).meter)["registers"]
    assert (registers["import_mWh"], registers["export_mWh"]) == (0, 40_000_000)


@pytest.mark.parametrize(
    ("raw", "code", "named"),
    [
        (b"", "bad_json", "JSON"),
        (b"{", "bad_json", "JSON"),
        (b"[1]", "bad_json", "JSON"),
        (b'"x"', "bad_json", "JSON"),
        (b"[" * 5000, "bad_json", "JSON"),
        (b'{"current_A":"100"}', "bad_type", "current_A"),
        (b'{"current_A":true}', "bad_type", "current_A"),
        (b'{"voltage_V":[400]}', "bad_type", "voltage_V"),
        (b'{"current_A":NaN}', "bad_type", "current_A"),
        (b'{"current_A":1e400}', "bad_type", "current_A"),
        (b'{"current_A":1e9}', "bad_value", "current_A"),
        (b'{"ramp_s":-1}', "bad_value", "ramp_s"),
        (b'{"amps":10}', "unknown_key", "amps"),
    ],
)
async def test_put_load_bad_bodies_are_400_and_change_nothing(
    control: Client, twin: Twin, raw: bytes, code: str, named: str
) -> None:
    before = view.snapshot(twin.slot(S1).meter)
    body = await expect_error(await control.put(METER + "/load", data=raw, headers=JSON_TYPE), 400, code)
    assert named in body["message"]
    assert view.snapshot(twin.slot(S1).meter) == before


async def test_body_not_matching_its_content_encoding_is_400(control: Client) -> None:
    resp = await control.put(
        METER + "/load", data=b'{"current_A":1}', headers={**JSON_TYPE, "Content-Encoding": "gzip"}
    )
    await expect_error(resp, 400, "bad_json")


async def test_control_body_over_64_kib_is_413(control: Client) -> None:
    raw = json.dumps({"current_A": 1, "pad": "x" * MAX_CONTROL_BODY}).encode()
    await expect_error(await control.put(METER + "/load", data=raw, headers=JSON_TYPE), 413, "body_too_large")


# ---- profile switches --------------------------------------------------------------------------------------


async def test_patch_profile(control: Client, device: aiohttp.ClientSession, twin: Twin) -> None:
    body = await ok(await control.patch(METER + "/profile", json={"v1_transaction": False, "signature_delay_ms": 250}))
    assert body["switches"]["v1_transaction"] is False
    assert body["switches"]["signature_delay_ms"] == 250
    assert body["switches"]["time_status_after_set"] == "I"
    async with device.get(meter_url(twin, S1, "transaction")) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"
    async with device.get(twin.slot(S1).url + "/counter/v2/ocmf/transaction") as resp:
        assert (await resp.json())["error"] == "no_record"
    # the other meter is untouched
    assert twin.slot(S2).meter.switches.v1_transaction is True


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"nope": 1}, "nope"),
        ({"v1_transaction": "yes"}, "v1_transaction"),
        ({"v1_transaction": 1}, "v1_transaction"),
        ({"signature_delay_ms": 1.5}, "signature_delay_ms"),
        ({"signature_delay_ms": True}, "signature_delay_ms"),
        ({"response_latency_ms": -1}, "response_latency_ms"),
        ({"time_status_after_set": "U"}, "time_status_after_set"),
        ({"signature_encoding": "pem"}, "signature_encoding"),
        ({"activation_threshold_A": "1"}, "activation_threshold_A"),
        ({"v1_transaction": False, "activation_threshold_A": -3}, "activation_threshold_A"),
    ],
)
async def test_patch_profile_bad_switch_is_400_and_changes_nothing(
    control: Client, twin: Twin, body: dict[str, Any], named: str
) -> None:
    before = twin.slot(S1).meter.switches
    error = await expect_error(await control.patch(METER + "/profile", json=body), 400, "bad_switch")
    assert named in error["message"]
    assert twin.slot(S1).meter.switches == before


async def test_patch_profile_not_an_object(control: Client) -> None:
    await expect_error(await control.patch(METER + "/profile", data=b"[]", headers=JSON_TYPE), 400, "bad_json")


# ---- power ---------------------------------------------------------------------------------------------------


async def test_power_off_refuses_connections_and_on_restores_the_same_port(
    control: Client, device: aiohttp.ClientSession, twin: Twin
) -> None:
    port = twin.slot(S1).port
    assert (await meter_post(device, twin, "gw", GW))[0] == 200
    assert await ok(await control.post(METER + "/power", json={"on": False})) == {"powered": False}
    assert await refused(device, twin)
    assert not await refused(device, twin, S2)
    meters = (await ok(await control.get("/api/meters")))["meters"]
    assert [m["powered"] for m in meters] == [False, True]
    assert await ok(await control.get("/healthz")) == {"ok": True}  # an unpowered meter is not "down"
    detail = await ok(await control.get(METER))
    assert detail["powered"] is False and detail["clock"]["time"] is None
    assert await ok(await control.post(METER + "/power", json={"on": False})) == {"powered": False}

    assert await ok(await control.post(METER + "/power", json={"on": True})) == {"powered": True}
    assert twin.slot(S1).port == port
    gw = await meter_get(device, twin, "gw")
    assert (gw["CT"], gw["TM"][-1]) == ("", "U")
    assert (await meter_post(device, twin, "gw", GW))[0] == 200


async def test_power_off_closes_keep_alive_connections(control: Client, twin: Twin) -> None:
    async with aiohttp.ClientSession() as keepalive:
        async with keepalive.get(meter_url(twin, S1, "metervalue")) as resp:
            assert resp.status == 200
        await ok(await control.post(METER + "/power", json={"on": False}))
        with pytest.raises(aiohttp.ClientError):
            async with keepalive.get(meter_url(twin, S1, "metervalue")) as resp:
                await resp.read()


async def test_power_off_mid_transaction_signs_a_p_record(
    control: Client, device: aiohttp.ClientSession, twin: Twin, clock: SimClock
) -> None:
    for node, body in (("gw", GW), ("user", USER), ("receipt", {"TX": "B"})):
        assert (await meter_post(device, twin, node, body))[0] == 200
    await ok(await control.put(METER + "/load", json={"current_A": 100, "voltage_V": 400}))
    clock.advance(36)
    await ok(await control.post(METER + "/power", json={"on": False}))
    await ok(await control.post(METER + "/power", json={"on": True}))
    async with device.get(meter_url(twin, S1, "transaction")) as resp:
        record = await resp.text()
    payload = json.loads(record.split("|")[1])
    assert payload["RD"][1]["TX"] == "P"
    assert payload["RD"][1]["RV"] == "00000000.400"
    async with device.get(meter_url(twin, S1, "receipt")) as resp:
        assert resp.status == 404  # receipt is volatile


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"on":1}', b'{"on":"false"}', b'{"on":null}', b'{"on":true,"x":1}'])
async def test_power_bad_body(control: Client, twin: Twin, raw: bytes) -> None:
    resp = await control.post(METER + "/power", data=raw, headers=JSON_TYPE)
    assert resp.status == 400
    assert (await resp.json())["error"] in ("bad_json", "bad_type", "unknown_key")
    assert twin.slot(S1).meter.powered and twin.slot(S1).listening


async def test_power_cycle_immediately(control: Client, device: aiohttp.ClientSession, twin: Twin) -> None:
    assert (await meter_post(device, twin, "gw", GW))[0] == 200
    assert (await meter_post(device, twin, "tariff", {"TT": "x"}))[0] == 200
    assert await ok(await control.post(METER + "/power-cycle")) == {"powered": True, "off_ms": 0.0}
    gw = await meter_get(device, twin, "gw")
    assert (gw["CT"], gw["CI"], gw["TM"][-2:]) == ("", "", " U")
    assert await meter_get(device, twin, "tariff") == {"TT": ""}
    assert (await meter_post(device, twin, "gw", GW))[0] == 200
    assert twin.slot(S1).meter.counters["power_cycles"] == 1


async def test_power_cycle_off_ms_runs_in_virtual_time(
    control: Client, device: aiohttp.ClientSession, twin: Twin, clock: SimClock
) -> None:
    body = await ok(await control.post(METER + "/power-cycle", json={"off_ms": 2000}))
    assert body == {"powered": False, "off_ms": 2000.0}
    assert await refused(device, twin)
    clock.advance(1.999)
    await asyncio.sleep(0.01)
    assert not twin.slot(S1).meter.powered
    assert await refused(device, twin)
    clock.advance(0.001)
    await until(lambda: twin.slot(S1).listening)
    assert twin.slot(S1).meter.powered
    assert (await meter_get(device, twin, "gw"))["TM"].endswith(" U")


async def test_power_on_during_off_ms_cancels_the_pending_power_on(
    control: Client, twin: Twin, clock: SimClock
) -> None:
    await ok(await control.post(METER + "/power-cycle", json={"off_ms": 1000}))
    await ok(await control.post(METER + "/power", json={"on": True}))
    await ok(await control.post(METER + "/power", json={"on": False}))
    clock.advance(5)
    await asyncio.sleep(0.01)
    assert not twin.slot(S1).meter.powered and not twin.slot(S1).listening


@pytest.mark.parametrize("raw", [b"[]", b'{"off_ms":-1}', b'{"off_ms":"5"}', b'{"off_ms":true}', b'{"off":5}'])
async def test_power_cycle_bad_body(control: Client, twin: Twin, raw: bytes) -> None:
    assert (await control.post(METER + "/power-cycle", data=raw, headers=JSON_TYPE)).status == 400
    assert twin.slot(S1).meter.powered and twin.slot(S1).meter.counters["power_cycles"] == 0


# ---- faults ---------------------------------------------------------------------------------------------------


async def test_fault_catalogue(control: Client) -> None:
    body = await ok(await control.get("/api/faults"))
    assert [f["name"] for f in body["faults"]] == FAULT_NAMES
    assert body["faults"] == [f.as_dict() for f in CATALOGUE]
    by_name = {f["name"]: f for f in body["faults"]}
    assert by_name["sensor_unit_fault"]["XC"] == "0x0001, 0x00000000, 0x00, 0x00"
    assert (by_name["sensor_unit_fault"]["ST"], by_name["sensor_unit_fault"]["EF"]) == ("F", "E")
    assert by_name["signature_unit_fault"]["blocks_receipts"] is True
    assert by_name["clock_lost"]["blocks_receipts"] is False and by_name["clock_lost"]["EF"] == "t"


async def test_raise_and_clear_fault(control: Client, device: aiohttp.ClientSession, twin: Twin) -> None:
    assert (await meter_post(device, twin, "gw", GW))[0] == 200
    assert await ok(await control.put(METER + "/faults/sensor_unit_fault")) == {"faults": ["sensor_unit_fault"]}
    value = await meter_get(device, twin, "metervalue")
    assert (value["ST"], value["EF"], value["XC"]) == ("F", "E", "0x0001, 0x00000000, 0x00, 0x00")
    status, body = await meter_post(device, twin, "receipt", {"TX": "B"})
    assert (status, body["error"]) == (503, "meter_error")
    body = await ok(await control.put(METER + "/faults/clock_lost", json={}))
    assert body == {"faults": ["clock_lost", "sensor_unit_fault"]}
    assert await ok(await control.put(METER + "/faults/clock_lost")) == body  # idempotent
    assert await ok(await control.delete(METER + "/faults/sensor_unit_fault")) == {"faults": ["clock_lost"]}
    assert await ok(await control.delete(METER + "/faults/sensor_unit_fault")) == {"faults": ["clock_lost"]}
    assert await ok(await control.delete(METER + "/faults/clock_lost")) == {"faults": []}
    value = await meter_get(device, twin, "metervalue")
    assert (value["ST"], value["XC"]) == ("G", HEALTHY_XC)
    assert (await meter_post(device, twin, "receipt", {"TX": "B"}))[0] == 200


async def test_fault_mid_transaction_ends_it_with_reason_a(
    control: Client, device: aiohttp.ClientSession, twin: Twin
) -> None:
    for node, body in (("gw", GW), ("user", USER), ("receipt", {"TX": "B"})):
        assert (await meter_post(device, twin, node, body))[0] == 200
    await ok(await control.put(METER + "/faults/tamper_detected"))
    detail = await ok(await control.get(METER))
    assert detail["transaction"] is None and detail["pagination"] == {"next": 2}
    async with device.get(meter_url(twin, S1, "receipt")) as resp:
        payload = json.loads((await resp.text()).split("|")[1])
    assert (payload["RD"][1]["TX"], payload["RD"][1]["ST"], payload["RD"][1]["EF"]) == ("A", "M", "E")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_unknown_fault_is_404_listing_known_names(control: Client, twin: Twin, method: str) -> None:
    body = await expect_error(await control.request(method, METER + "/faults/meteor_strike"), 404, "unknown_fault")
    assert "meteor_strike" in body["message"]
    assert body["known"] == FAULT_NAMES
    assert twin.slot(S1).meter.faults == frozenset()


async def test_fault_bad_body(control: Client, twin: Twin) -> None:
    await expect_error(await control.put(METER + "/faults/clock_lost", data=b"[1]", headers=JSON_TYPE), 400, "bad_json")
    assert twin.slot(S1).meter.faults == frozenset()


# ---- clock ---------------------------------------------------------------------------------------------------


async def test_get_clock(control: Client, clock: SimClock) -> None:
    body = await ok(await control.get("/api/clock"))
    assert body == {"mode": "virtual", "rate": 0.0, "now": clock.now(), "pending_sleepers": 0}
    assert body["now"] == pytest.approx(T0)


async def test_advance_moves_meter_time_and_energy(
    control: Client, device: aiohttp.ClientSession, twin: Twin, clock: SimClock
) -> None:
    before = clock.now()
    await ok(await control.put(METER + "/load", json={"current_A": 100, "voltage_V": 400}))
    body = await ok(await control.post("/api/clock/advance", json={"seconds": 3600}))
    assert body["now"] == before + 3600
    value = await meter_get(device, twin, "metervalue")
    assert value["RD"][0]["RV"] == "00000040.000"
    assert value["TM"].startswith("2025-06-15T16:06:40,")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{}", "bad_value"),
        (b'{"seconds":0}', "bad_value"),
        (b'{"seconds":-5}', "bad_value"),
        (b'{"seconds":"5"}', "bad_type"),
        (b'{"seconds":true}', "bad_type"),
        (b'{"secs":5}', "unknown_key"),
        (b"5", "bad_json"),
    ],
)
async def test_advance_bad_body(control: Client, clock: SimClock, raw: bytes, code: str) -> None:
    before = clock.now()
    await expect_error(await control.post("/api/clock/advance", data=raw, headers=JSON_TYPE), 400, code)
    assert clock.now() == before


async def test_rate_zero_freezes_and_rate_runs(control: Client, clock: SimClock) -> None:
    frozen = (await ok(await control.get("/api/clock")))["now"]
    await asyncio.sleep(0.02)
    assert (await ok(await control.get("/api/clock")))["now"] == frozen
    body = await ok(await control.put("/api/clock", json={"rate": 100_000}))
    assert (body["mode"], body["rate"]) == ("virtual", 100_000.0)
    await until(lambda: clock.now() > frozen + 100)
    body = await ok(await control.put("/api/clock", json={"mode": "virtual", "rate": 0}))
    now = body["now"]
    await asyncio.sleep(0.01)
    assert clock.now() == now >= frozen + 100


async def test_real_mode_refuses_advance_and_never_goes_back(control: Client, clock: SimClock) -> None:
    await ok(await control.post("/api/clock/advance", json={"seconds": 10 * 365 * 86_400}))  # far in the future
    before = clock.now()
    body = await ok(await control.put("/api/clock", json={"mode": "real"}))
    assert (body["mode"], body["rate"]) == ("real", 1.0)
    assert body["now"] >= before
    await expect_error(await control.post("/api/clock/advance", json={"seconds": 1}), 400, "clock_not_virtual")
    await expect_error(await control.put("/api/clock", json={"rate": 0}), 400, "clock_not_virtual")
    assert clock.mode == "real"
    body = await ok(await control.put("/api/clock", json={"mode": "virtual", "rate": 0}))
    assert body["mode"] == "virtual" and body["now"] >= before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"mode":"fast"}', "bad_mode"),
        (b'{"mode":1}', "bad_mode"),
        (b'{"rate":-1}', "bad_value"),
        (b'{"rate":"2"}', "bad_type"),
        (b'{"rate":1e7}', "bad_value"),
        (b'{"speed":2}', "unknown_key"),
        (b"[]", "bad_json"),
    ],
)
async def test_put_clock_bad_body(control: Client, clock: SimClock, raw: bytes, code: str) -> None:
    await expect_error(await control.put("/api/clock", data=raw, headers=JSON_TYPE), 400, code)
    assert (clock.mode, clock.rate) == ("virtual", 0.0)


# ---- journal ---------------------------------------------------------------------------------------------------


async def test_journal_get_since_limit_delete(control: Client, device: aiohttp.ClientSession, twin: Twin) -> None:
    assert (await meter_post(device, twin, "gw", GW))[0] == 200
    assert (await meter_post(device, twin, "gw", GW))[0] == 428
    await meter_get(device, twin, "metervalue")
    await meter_get(device, twin, "metervalue", S2)
    body = await ok(await control.get(METER + "/journal"))
    assert body["last_seq"] == 3
    entries = body["entries"]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert list(entries[0]) == [
        "seq",
        "sim_time",
        "wall_time",
        "method",
        "path",
        "body",
        "status",
        "error",
        "latency_ms",
        "findings",
    ]
    assert [(e["method"], e["path"], e["status"], e["error"]) for e in entries] == [
        ("POST", V1 + "gw", 200, None),
        ("POST", V1 + "gw", 428, "gw_already_set"),
        ("GET", V1 + "metervalue", 200, None),
    ]
    assert entries[0]["body"] == GW
    since = await ok(await control.get(METER + "/journal", params={"since": "1", "limit": "1"}))
    assert [e["seq"] for e in since["entries"]] == [2]
    assert (await ok(await control.get(METER + "/journal?since=3")))["entries"] == []
    assert (await ok(await control.get(METER + "/journal?limit=0")))["entries"] == []
    assert await ok(await control.delete(METER + "/journal")) == {"cleared": True}
    body = await ok(await control.get(METER + "/journal"))
    assert body == {"entries": [], "last_seq": 3}
    assert len((await ok(await control.get(f"/api/meters/{S2}/journal")))["entries"]) == 1
    await meter_get(device, twin, "gw")
    assert [e["seq"] for e in (await ok(await control.get(METER + "/journal")))["entries"]] == [4]


async def test_journal_is_a_ring_buffer(control: Client, device: aiohttp.ClientSession, twin: Twin) -> None:
    for _ in range(60):
        await meter_get(device, twin, "datetime")
    body = await ok(await control.get(METER + "/journal"))
    assert len(body["entries"]) == 50
    assert body["entries"][0]["seq"] == 11 and body["last_seq"] == 60


@pytest.mark.parametrize("query", ["since=x", "since=-1", "limit=1.5", "limit=-2"])
async def test_journal_bad_query(control: Client, query: str) -> None:
    body = await expect_error(await control.get(METER + "/journal?" + query), 400, "bad_query")
    assert query.split("=")[0] in body["message"]


@pytest.mark.parametrize("query", ["limit=1000000000000000000", "limit=99999999999999999999", "since=1" + "0" * 30])
async def test_journal_query_too_large_is_400_naming_the_range(control: Client, query: str) -> None:
    """A number of ASCII digits above the range: the message gives the range, not a complaint about digits."""
    body = await expect_error(await control.get(METER + "/journal?" + query), 400, "bad_query")
    key = query.split("=")[0]
    assert body["message"].startswith(f"{key} must be a whole number from 0 to 999999999999999999 "), body


async def test_journal_query_at_the_top_of_its_range_is_accepted(control: Client) -> None:
    top = "999999999999999999"
    assert (await ok(await control.get(METER + f"/journal?since={top}&limit={top}")))["entries"] == []


# ---- nothing a client sends crashes the control plane ----------------------------------------------------------


async def test_control_fuzz_never_answers_5xx(control: Client, twin: Twin) -> None:
    paths = ["/healthz", "/api/meters", METER, METER + "/load", METER + "/profile", METER + "/power-cycle"]
    paths += [METER + "/faults/clock_lost", "/api/clock", "/api/clock/advance", METER + "/journal", "/x"]
    bodies = [b"", b"{}", b"null", b"[]", b'{"a":{}}', b"\xff", b'{"current_A":{}}', b'{"rate":[]}']
    for path in paths:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            for raw in bodies:
                resp = await control.request(method, path, data=raw, headers=JSON_TYPE)
                text = await resp.text()
                assert resp.status < 500, (method, path, raw, text)
                assert "Traceback" not in text
    assert twin.slot(S1).meter.powered


# ---- request bodies: JSON text, keys given twice, a body that stops arriving ---------------------------------


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"current_A":5', "line 1 column 15 (char 14)"),  # cut off before the closing brace
        (b'{"current_A":', "line 1 column 14 (char 13)"),
        (b'{\n  "current_A": 5,\n  "voltage_V": 4', "line 3 column 17 (char 36)"),
    ],
)
async def test_truncated_json_is_400_bad_json_naming_the_parsers_position(
    control: Client, twin: Twin, raw: bytes, where: str
) -> None:
    before = view.snapshot(twin.slot(S1).meter)
    body = await expect_error(await control.put(METER + "/load", data=raw, headers=JSON_TYPE), 400, "bad_json")
    assert body["message"].startswith("the body is not valid JSON: "), body
    assert body["message"].endswith(where), body
    assert view.snapshot(twin.slot(S1).meter) == before


@pytest.mark.parametrize(
    ("path", "raw", "key"),
    [
        ("/load", b'{"current_A": 5, "voltage_V": 400, "current_A": 50}', "current_A"),
        ("/network", b'{"rules": [{"action": "hang", "action": "reset"}]}', "action"),  # in a nested object
        ("/factory-reset", b'{"x": 1, "x": 1}', "x"),  # even where the schema would refuse the key anyway
    ],
)
async def test_a_key_given_twice_is_400_bad_json_naming_the_key(
    control: Client, twin: Twin, path: str, raw: bytes, key: str
) -> None:
    """JSON leaves the meaning of a key given twice open (RFC 8259 §4): refused rather than the last one kept."""
    meter = twin.slot(S1).meter
    before, fingerprint = view.snapshot(meter), meter.signer.fingerprint
    method = "POST" if path == "/factory-reset" else "PUT"
    body = await expect_error(await control.request(method, METER + path, data=raw, headers=JSON_TYPE), 400, "bad_json")
    assert body["message"] == f"the key {key!r} appears twice in one object of the body; give each key once"
    assert view.snapshot(meter) == before and meter.signer.fingerprint == fingerprint
    assert (await ok(await control.get(METER + "/network")))["rules"] == []


@pytest.mark.parametrize(
    ("framing", "partial"),
    [
        ("Content-Length: 40", b'{"current_A":'),  # read by the handler (control/body.py)
        ("Transfer-Encoding: chunked", b'20\r\n{"current_A":'),  # read by the browser guard (control/security.py)
    ],
)
async def test_a_body_that_stops_arriving_is_408_and_the_connection_closed_behind_it(
    aiohttp_server: ServerFactory, twin: Twin, framing: str, partial: bytes
) -> None:
    """Half a body, then nothing: 408 once ``--idle-timeout`` (0.2 s here) runs out, and the connection closed
    right behind the answer. Without a body timeout the request would wait for ever; and left to itself, aiohttp
    would drain the unread rest for its lingering time (an hour here) before closing. ``send_raw`` reads to the
    end of the connection, so either would stop it only at its hang guard."""
    twin.idle_timeout_s = 0.2
    server = await aiohttp_server(create_control_app(twin), lingering_time=3600)
    head = f"PUT {METER}/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    before = view.snapshot(twin.slot(S1).meter)
    received = await send_raw(server.host, server.port, head.encode() + partial)
    assert_408_and_closed(received, 0.2)
    assert view.snapshot(twin.slot(S1).meter) == before


async def test_the_control_port_drains_a_refused_body_no_longer_than_the_idle_timeout(twin: Twin) -> None:
    """``serve --idle-timeout 0.2``: a request refused before its body is read (404 here, with 5 of 100 bytes
    sent) is answered at once, and the connection closes within the idle timeout as on a meter port, not after
    aiohttp's default lingering time of 10 s. ``send_raw`` reads to the end of the connection (60 s guard)."""
    runner = limits.app_runner(create_control_app(twin), 0.2)
    await runner.setup()
    try:
        assert runner.server is not None
        settings = runner.server._kwargs  # what every connection's RequestHandler is built with
        assert (settings["lingering_time"], settings["keepalive_timeout"]) == (0.2, 0.2)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        head = (
            "PUT /api/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        received = await send_raw("127.0.0.1", site.port, head.encode() + b"12345")
        assert received.startswith(b"HTTP/1.1 404 ")  # answered, then closed behind it (send_raw saw the end)
    finally:
        await runner.cleanup()
    assert limits.app_runner(create_control_app(twin), 60.0)._kwargs["lingering_time"] == 10.0  # aiohttp's cap


# ---- nesting depth (control-api.md §2, meter-api.md §1: deeper than 32 levels is 400 bad_json) -------------


def nested(depth: int) -> bytes:
    """A JSON object ``depth`` levels deep, its depth in one ignored key."""
    return b'{"x":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


async def test_a_control_body_nested_deeper_than_32_levels_is_400(control: Client, twin: Twin) -> None:
    """``PUT faults/{name}`` ignores its body, so depth is all that can refuse it."""
    meter = twin.slot(S1).meter
    for depth in (33, 980):
        resp = await control.put(METER + "/faults/clock_lost", data=nested(depth), headers=JSON_TYPE)
        assert "32" in (await expect_error(resp, 400, "bad_json"))["message"]
        resp = await control.put(METER + "/load", data=nested(depth), headers=JSON_TYPE)
        await expect_error(resp, 400, "bad_json")
    assert meter.faults == frozenset()
    await ok(await control.put(METER + "/faults/clock_lost", data=nested(32), headers=JSON_TYPE))
    assert meter.faults == frozenset({"clock_lost"})


async def test_a_number_too_large_for_a_float_is_out_of_range_not_a_crash(control: Client, twin: Twin) -> None:
    """Python's JSON reader makes a 400-digit integer an int that no float holds; the schema refuses its range."""
    before = view.snapshot(twin.slot(S1).meter)
    raw = b'{"current_A": 1' + b"0" * 400 + b"}"
    body = await expect_error(await control.put(METER + "/load", data=raw, headers=JSON_TYPE), 400, "bad_value")
    assert "current_A" in body["message"]
    assert view.snapshot(twin.slot(S1).meter) == before
