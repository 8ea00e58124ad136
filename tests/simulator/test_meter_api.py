"""The meter's REST API on the wire (meter-api.md §1, §2, §4): shapes, key order, status and error codes.

Every test runs against ``create_meter_app`` with a frozen virtual clock that only moves when a test advances
it, so time-dependent answers (TM, energy, signature delay, response latency) are exact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.meter_api import MAX_BODY, create_meter_app
from iemdcr_twin.simulator.model import Meter, RamMemory, Switches, get_profile
from tests.support.clock import T0
from tests.support.http import V1, assert_408_and_closed, send_raw
from tests.support.meter import GW, HEALTHY_XC, SERIAL, TARIFF, USER, assert_verifies, seeded_signer

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
Client = TestClient[Any, Any]

V2_TX = "/counter/v2/ocmf/transaction"
T0_TM = "2025-06-15T15:06:40,000+0000"  # T0 in UTC, as the meter shows it before any write
GW_TM = "2025-06-06T09:26:24,000+0100"
DER_P256_PREFIX = "3059301306072a8648ce3d020106082a8648ce3d030107034200"


# ---- fixtures and helpers --------------------------------------------------------------------------------


@pytest.fixture
def host(clock: SimClock) -> MeterHost:
    meter = Meter(get_profile("iem-dcr-125"), SERIAL, clock.now, RamMemory(), seeded_signer(SERIAL), Switches())
    return MeterHost(meter, clock, Journal(100))


@pytest.fixture
def meter(host: MeterHost) -> Meter:
    return host.meter


@pytest.fixture
async def client(aiohttp_client: ClientFactory, host: MeterHost) -> Client:
    return await aiohttp_client(create_meter_app(host))


def compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


async def ok_json(resp: aiohttp.ClientResponse) -> Any:
    body = await resp.read()
    assert resp.status == 200, body
    assert resp.headers["Content-Type"] == "application/json"
    return json.loads(body)


async def expect_error(resp: aiohttp.ClientResponse, status: int, code: str) -> str:
    """Assert a JSON error ``{"error","message"}`` with this status and code; return the message."""
    raw = await resp.read()
    assert resp.status == status, raw
    assert resp.headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert list(body) == ["error", "message"]
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in raw.decode()
    return str(body["message"])


async def post(client: Client, node: str, body: Any) -> aiohttp.ClientResponse:
    return await client.post(V1 + node, data=compact(body), headers={"Content-Type": "application/json"})


async def init_charger(client: Client) -> None:
    """What a charger does after power-up: gw, tariff, user."""
    for node, body in (("gw", GW), ("tariff", TARIFF), ("user", USER)):
        await ok_json(await post(client, node, body))


async def run_transaction(client: Client, meter: Meter, clock: SimClock) -> str:
    """B, 100 A at 400 V for 6 minutes, load off, E; returns GET receipt."""
    assert await ok_json(await post(client, "receipt", {"TX": "B"})) == {"TX": "B", "XT": True}
    meter.set_load(100.0, 400.0)
    clock.advance(360)
    meter.set_load(0.0)
    assert await ok_json(await post(client, "receipt", {"TX": "E"})) == {"TX": "E", "XT": False}
    resp = await client.get(V1 + "receipt")
    assert resp.status == 200
    return await resp.text()


# ---- gw --------------------------------------------------------------------------------------------------


async def test_get_gw_before_any_write_is_empty_with_status_u(client: Client) -> None:
    resp = await client.get(V1 + "gw")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.read() == compact({"CT": "", "CI": "", "TM": T0_TM + " U"})


async def test_post_gw_stores_and_answers_the_stored_block(client: Client, clock: SimClock) -> None:
    resp = await post(client, "gw", GW)
    assert resp.status == 200
    assert await resp.read() == compact({"CT": GW["CT"], "CI": GW["CI"], "TM": GW_TM + " I"})
    clock.advance(61.5)
    got = await ok_json(await client.get(V1 + "gw"))
    assert list(got) == ["CT", "CI", "TM"]
    assert got == {"CT": GW["CT"], "CI": GW["CI"], "TM": "2025-06-06T09:27:25,500+0100 I"}
    assert len(got["TM"]) == 30


async def test_second_post_gw_is_428_and_changes_nothing(client: Client, meter: Meter) -> None:
    await ok_json(await post(client, "gw", GW))
    before = view.snapshot(meter)
    other = {"CT": "CBIDC", "CI": "OTHER", "TM": "2030-01-01T00:00:00,000+0000"}
    await expect_error(await post(client, "gw", other), 428, "gw_already_set")
    assert view.snapshot(meter) == before


async def test_malformed_gw_is_400_even_when_gw_is_already_set(client: Client) -> None:
    await ok_json(await post(client, "gw", GW))
    await expect_error(await post(client, "gw", {**GW, "TM": "yesterday"}), 400, "bad_time")
    await expect_error(await post(client, "gw", {"CT": "EVSEID", "CI": "x"}), 400, "missing_key")


async def test_time_status_after_set_s_switch(client: Client, meter: Meter) -> None:
    meter.set_switches({"time_status_after_set": "S"})
    assert (await ok_json(await post(client, "gw", GW)))["TM"] == GW_TM + " S"


# ---- tariff, datetime, user, publickey ------------------------------------------------------------------


async def test_tariff_post_and_get(client: Client) -> None:
    assert await ok_json(await client.get(V1 + "tariff")) == {"TT": ""}
    resp = await post(client, "tariff", TARIFF)
    assert await resp.read() == compact(TARIFF)
    assert await ok_json(await client.get(V1 + "tariff")) == TARIFF
    assert await ok_json(await post(client, "tariff", {"TT": ""})) == {"TT": ""}


async def test_datetime_get_and_post(client: Client, clock: SimClock) -> None:
    assert await ok_json(await client.get(V1 + "datetime")) == {"TM": T0_TM + " U"}
    resp = await post(client, "datetime", {"TM": "2025-01-02T03:04:05,678-0230"})
    assert await resp.read() == compact({"TM": "2025-01-02T03:04:05,678-0230 I"})
    clock.advance(1)
    assert await ok_json(await client.get(V1 + "datetime")) == {"TM": "2025-01-02T03:04:06,678-0230 I"}


async def test_user_default_post_and_get(client: Client) -> None:
    default = await ok_json(await client.get(V1 + "user"))
    assert default == {"IS": False, "IL": "NONE", "IF": [], "IT": "NONE", "ID": "", "US": False}
    resp = await post(client, "user", USER)
    assert await resp.read() == compact(USER)
    got = await ok_json(await client.get(V1 + "user"))
    assert list(got) == ["IS", "IL", "IF", "IT", "ID", "US"]
    assert got == USER


async def test_user_with_tt_replaces_the_tariff(client: Client) -> None:
    await ok_json(await post(client, "tariff", TARIFF))
    body = {**USER, "TT": "0.59 EUR/kWh", "unknown_extra": 1}
    assert await ok_json(await post(client, "user", body)) == {**USER, "TT": "0.59 EUR/kWh"}
    assert await ok_json(await client.get(V1 + "tariff")) == {"TT": "0.59 EUR/kWh"}


async def test_publickey_is_hex_der_subject_public_key_info(client: Client, meter: Meter) -> None:
    resp = await client.get(V1 + "publickey")
    body = await ok_json(resp)
    assert list(body) == ["SA", "PK"]
    assert body["SA"] == "ECDSA-secp256r1-SHA256"
    assert body["PK"] == meter.signer.public_key_hex
    assert body["PK"].lower().startswith(DER_P256_PREFIX)
    assert len(bytes.fromhex(body["PK"])) == 91


# ---- metervalue ------------------------------------------------------------------------------------------


async def test_metervalue_idle_shape_and_key_order(client: Client) -> None:
    body = await ok_json(await client.get(V1 + "metervalue"))
    assert list(body) == ["MS", "TM", "EF", "ST", "XT", "RD", "U1", "U2", "U3", "U4", "I", "P", "XS", "XC"]
    assert body["MS"] == SERIAL
    assert body["TM"] == T0_TM + " U"
    assert (body["EF"], body["ST"], body["XT"]) == ("", "G", False)
    assert body["RD"] == [
        {"RV": "00000000.000", "RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"},
        {"RV": "00000000.000", "RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"},
        {"WV": "00000000.000", "WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"},
        {"WV": "00000000.000", "WI": "transaction_1-b:2.8.e", "WU": "kWh", "WT": "DC"},
    ]
    for row in body["RD"]:
        assert list(row)[1:] in (["RI", "RU", "RT"], ["WI", "WU", "WT"])
    assert (body["U3"], body["U4"], body["I"], body["P"]) == (0, 0, 0, 0)
    assert body["XS"] == "0x0000000000000000"
    assert body["XC"] == HEALTHY_XC


async def test_metervalue_during_and_after_a_transaction(client: Client, meter: Meter, clock: SimClock) -> None:
    await init_charger(client)
    await ok_json(await post(client, "receipt", {"TX": "B"}))
    meter.set_load(100.0, 400.0)
    clock.advance(360)
    body = await ok_json(await client.get(V1 + "metervalue"))
    assert body["XT"] is True
    assert body["RD"][0]["RV"] == "00000004.000"
    assert body["RD"][2]["WV"] == "00000004.000"
    assert body["RD"][3]["WV"] == "00000000.000"
    assert (body["I"], body["U2"], body["P"]) == (100.0, 400.0, 40000.0)
    assert body["U1"] == pytest.approx(0.01)
    assert body["XS"] == "0x000000000000000F"  # transaction, gw written, time set, above threshold
    meter.set_load(0.0)
    await ok_json(await post(client, "receipt", {"TX": "E"}))
    after = await ok_json(await client.get(V1 + "metervalue"))
    assert after["XT"] is False
    assert after["RD"][2]["WV"] == "00000004.000"  # kept after E until the next B
    assert after["XS"] == "0x0000000000000006"


async def test_metervalue_export_goes_to_the_export_registers(client: Client, meter: Meter, clock: SimClock) -> None:
    meter.set_load(-50.0, 400.0)
    clock.advance(180)
    body = await ok_json(await client.get(V1 + "metervalue"))
    assert body["RD"][0]["RV"] == "00000000.000"
    assert body["RD"][1]["RV"] == "00000001.000"
    assert body["P"] == -20000.0


# ---- receipt and transaction -----------------------------------------------------------------------------


async def test_transaction_record_is_exact_text_and_verifies(client: Client, meter: Meter, clock: SimClock) -> None:
    await init_charger(client)
    resp = await client.get(V1 + "receipt")
    await expect_error(resp, 404, "no_record")
    await expect_error(await client.get(V1 + "transaction"), 404, "no_record")
    await expect_error(await client.get(V2_TX), 404, "no_record")

    record = await run_transaction(client, meter, clock)
    for path in (V1 + "receipt", V1 + "transaction", V2_TX):
        resp = await client.get(path)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
        raw = await resp.read()
        assert raw == meter.registers.last_transaction.encode()  # type: ignore[union-attr]
        assert not raw.endswith(b"\n")
        assert raw.startswith(b"OCMF|{")
        assert raw.count(b"|") == 2
    parsed = assert_verifies(record, meter.signer.public_key_hex)
    assert parsed.payload.PG == "T1"
    payload = json.loads(record.split("|")[1])
    assert payload["RD"][0]["RV"] == "00000000.000"
    assert payload["RD"][1]["RV"] == "00000004.000"
    assert payload["RD"][1]["TX"] == "E"
    assert payload["TT"] == TARIFF["TT"]


async def test_second_transaction_advances_pg(client: Client, meter: Meter, clock: SimClock) -> None:
    await init_charger(client)
    first = await run_transaction(client, meter, clock)
    second = await run_transaction(client, meter, clock)
    assert json.loads(first.split("|")[1])["PG"] == "T1"
    assert json.loads(second.split("|")[1])["PG"] == "T2"
    assert await (await client.get(V2_TX)).text() == second


async def test_v1_transaction_switched_off_is_404_while_v2_works(client: Client, meter: Meter, clock: SimClock) -> None:
    await init_charger(client)
    record = await run_transaction(client, meter, clock)
    meter.set_switches({"v1_transaction": False})
    await expect_error(await client.get(V1 + "transaction"), 404, "not_found")
    resp = await client.get(V2_TX)
    assert resp.status == 200
    assert await resp.text() == record
    meter.set_switches({"v1_transaction": True})
    assert await (await client.get(V1 + "transaction")).text() == record


async def test_signature_delay_gives_425_until_the_sim_clock_reaches_it(
    client: Client, meter: Meter, clock: SimClock
) -> None:
    meter.set_switches({"signature_delay_ms": 1500})
    await init_charger(client)
    await ok_json(await post(client, "receipt", {"TX": "B"}))
    await ok_json(await post(client, "receipt", {"TX": "E"}))
    await expect_error(await client.get(V1 + "receipt"), 425, "signature_pending")
    clock.advance(1.499)
    await expect_error(await client.get(V1 + "receipt"), 425, "signature_pending")
    clock.advance(0.001)
    resp = await client.get(V1 + "receipt")
    assert resp.status == 200
    assert await resp.text() == meter.registers.last_transaction


async def test_receipt_428_codes(client: Client, meter: Meter) -> None:
    await expect_error(await post(client, "receipt", {"TX": "E"}), 428, "no_transaction")
    await expect_error(await post(client, "receipt", {"TX": "B"}), 428, "gw_not_set")
    await ok_json(await post(client, "gw", GW))
    meter.set_load(5.0, 400.0)
    await expect_error(await post(client, "receipt", {"TX": "B"}), 428, "current_above_threshold")
    meter.set_load(1.0)  # exactly at the threshold is allowed
    await ok_json(await post(client, "receipt", {"TX": "B"}))
    await expect_error(await post(client, "receipt", {"TX": "B"}), 428, "transaction_running")
    meter.set_load(1.5)
    await expect_error(await post(client, "receipt", {"TX": "E"}), 428, "current_above_threshold")
    assert meter.transaction is not None


async def test_require_gw_switch_off_lets_b_through(client: Client, meter: Meter) -> None:
    meter.set_switches({"require_gw_for_transaction": False})
    assert await ok_json(await post(client, "receipt", {"TX": "B"})) == {"TX": "B", "XT": True}


async def test_changes_during_a_transaction_are_428(client: Client, meter: Meter) -> None:
    await init_charger(client)
    await ok_json(await post(client, "receipt", {"TX": "B"}))
    before = view.snapshot(meter)
    await expect_error(await post(client, "tariff", {"TT": "free"}), 428, "transaction_running")
    await expect_error(await post(client, "user", USER), 428, "transaction_running")
    await expect_error(await post(client, "datetime", {"TM": GW_TM}), 428, "transaction_running")
    assert view.snapshot(meter) == before


async def test_meter_error_is_503_and_metervalue_keeps_answering(client: Client, meter: Meter) -> None:
    await init_charger(client)
    meter.raise_fault("sensor_unit_fault")
    await expect_error(await post(client, "receipt", {"TX": "B"}), 503, "meter_error")
    await expect_error(await post(client, "receipt", {"TX": "E"}), 503, "meter_error")
    body = await ok_json(await client.get(V1 + "metervalue"))
    assert (body["ST"], body["EF"]) == ("F", "E")
    assert body["XC"] == "0x0001, 0x00000000, 0x00, 0x00"
    assert body["XS"] == "0x0000000000000106"
    # validation still comes first
    await expect_error(await post(client, "receipt", {"TX": "X"}), 400, "bad_tx")


async def test_signature_unit_fault_keeps_transaction_open_until_cleared(client: Client, meter: Meter) -> None:
    await init_charger(client)
    await ok_json(await post(client, "receipt", {"TX": "B"}))
    meter.raise_fault("signature_unit_fault")
    await expect_error(await post(client, "receipt", {"TX": "E"}), 503, "meter_error")
    assert meter.transaction is not None
    meter.clear_fault("signature_unit_fault")
    assert await ok_json(await post(client, "receipt", {"TX": "E"})) == {"TX": "E", "XT": False}


# ---- routing: unknown paths, wrong methods ---------------------------------------------------------------

GET_ONLY = ["metervalue", "publickey", "transaction"]
GET_POST = ["gw", "tariff", "datetime", "user", "receipt"]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/counter/v1/ocmf/",
        "/counter/v1/ocmf/nope",
        "/counter/v1/ocmf/gw/",
        "/counter/v1/ocmf/GW",
        "/counter/v2/ocmf/gw",
        "/counter/v3/ocmf/transaction",
        "/api/meters",
    ],
)
async def test_unknown_path_is_404(client: Client, path: str) -> None:
    message = await expect_error(await client.get(path), 404, "not_found")
    assert path in message
    await expect_error(await client.post(path, data=b"{}"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, V1 + n) for n in GET_ONLY for m in ("POST", "PUT", "DELETE", "PATCH", "HEAD")]
    + [(m, V1 + n) for n in GET_POST for m in ("PUT", "DELETE", "PATCH", "OPTIONS")]
    + [("POST", V2_TX), ("DELETE", V2_TX)],
)
async def test_wrong_method_is_405(client: Client, meter: Meter, method: str, path: str) -> None:
    before = view.snapshot(meter)
    resp = await client.request(method, path, data=compact({"TX": "B"}))
    assert resp.status == 405
    if method != "HEAD":
        message = await expect_error(resp, 405, "method_not_allowed")
        assert method in message
    assert view.snapshot(meter) == before


# ---- bad input on every POST node: 4xx JSON naming the problem, state unchanged --------------------------

NOT_OBJECTS: list[bytes] = [
    b"",
    b"{",
    b"not json",
    b"\xff\xfe\x00",
    b"[]",
    b'["TX","B"]',
    b'"B"',
    b"42",
    b"4.2",
    b"null",
    b"true",
    b"[" * 5000,
    b'{"TX":' + b"[" * 4000 + b"]" * 4000 + b"}",
]


@pytest.mark.parametrize("node", GET_POST)
@pytest.mark.parametrize("raw", NOT_OBJECTS)
async def test_body_that_is_not_a_json_object_is_400_bad_json(
    client: Client, meter: Meter, host: MeterHost, node: str, raw: bytes
) -> None:
    before = view.snapshot(meter)
    resp = await client.post(V1 + node, data=raw, headers={"Content-Type": "application/json"})
    message = await expect_error(resp, 400, "bad_json")
    assert "JSON object" in message or "not valid JSON" in message, message
    assert view.snapshot(meter) == before
    entry = host.journal.entries()[-1]
    assert (entry.status, entry.error) == (400, "bad_json")


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"TT":"0.49 EUR/kWh"', "line 1 column 21 (char 20)"),  # cut off before the closing brace
        (b'{"TT":', "line 1 column 7 (char 6)"),
        (b'{"TT":"0.49}', "line 1 column 7 (char 6)"),  # an unterminated string: where it began
    ],
)
async def test_truncated_json_is_400_bad_json_naming_the_parsers_position(
    client: Client, meter: Meter, raw: bytes, where: str
) -> None:
    before = view.snapshot(meter)
    resp = await client.post(V1 + "tariff", data=raw, headers={"Content-Type": "application/json"})
    message = await expect_error(resp, 400, "bad_json")
    assert message.startswith("the body is not valid JSON: ") and message.endswith(where), message
    assert view.snapshot(meter) == before


async def test_a_key_given_twice_is_still_accepted_the_last_one_counting(client: Client) -> None:
    """The meter API keeps Python's reading of a key given twice (the last value wins), as it always has; only
    the control API refuses such a body (docs/fidelity.md)."""
    resp = await client.post(
        V1 + "tariff", data=b'{"TT":"0.39 EUR/kWh","TT":"0.49 EUR/kWh"}', headers={"Content-Type": "application/json"}
    )
    assert await ok_json(resp) == TARIFF
    assert await ok_json(await client.get(V1 + "tariff")) == TARIFF


VALID: dict[str, dict[str, Any]] = {
    "gw": GW,
    "tariff": TARIFF,
    "datetime": {"TM": GW_TM},
    "user": USER,
    "receipt": {"TX": "B"},
}

BAD_FIELDS: list[tuple[str, dict[str, Any], str, str]] = [
    # node, changes to the valid body (None deletes the key), error code, word the message must name
    ("gw", {"CT": None}, "missing_key", "CT"),
    ("gw", {"CI": None}, "missing_key", "CI"),
    ("gw", {"TM": None}, "missing_key", "TM"),
    ("gw", {"CT": 1}, "bad_type", "CT"),
    ("gw", {"CT": True}, "bad_type", "CT"),
    ("gw", {"CI": ["x"]}, "bad_type", "CI"),
    ("gw", {"TM": 1749194784}, "bad_time", "TM"),  # any TM but the format is bad_time (meter-api.md §3.3)
    ("gw", {"CT": ""}, "bad_value", "CT"),
    ("gw", {"CI": "x" * 65}, "bad_value", "CI"),
    ("gw", {"CT": "EVSE|ID"}, "bad_value", "|"),
    ("gw", {"CI": "DE*ISA|E0001"}, "bad_value", "|"),
    ("gw", {"TM": "2025-06-06T09:26:24.000+0100"}, "bad_time", "TM"),
    ("gw", {"TM": "2025-06-06T09:26:24,000+01:00"}, "bad_time", "TM"),
    ("gw", {"TM": "2025-06-06T09:26:24,000Z"}, "bad_time", "TM"),
    ("gw", {"TM": "2025-02-30T09:26:24,000+0100"}, "bad_time", "TM"),
    ("gw", {"TM": "2025-06-06T09:26:24,000+0100 I"}, "bad_time", "TM"),
    ("gw", {"TM": ""}, "bad_time", "TM"),
    ("tariff", {"TT": None}, "missing_key", "TT"),
    ("tariff", {"TT": 0.49}, "bad_type", "TT"),
    ("tariff", {"TT": False}, "bad_type", "TT"),
    ("tariff", {"TT": "x" * 251}, "bad_value", "TT"),
    ("tariff", {"TT": "a|b"}, "bad_value", "|"),
    ("datetime", {"TM": None}, "missing_key", "TM"),
    ("datetime", {"TM": None, "tm": GW_TM}, "missing_key", "TM"),
    ("datetime", {"TM": 0}, "bad_time", "TM"),
    ("datetime", {"TM": "now"}, "bad_time", "TM"),
    ("datetime", {"TM": "2025-06-06T25:26:24,000+0100"}, "bad_time", "TM"),
    ("datetime", {"TM": "2025-06-06T09:26:24,000+2400"}, "bad_time", "TM"),
    ("user", {"IS": None}, "missing_key", "IS"),
    ("user", {"ID": None}, "missing_key", "ID"),
    ("user", {"US": None}, "missing_key", "US"),
    ("user", {"IS": 1}, "bad_type", "IS"),
    ("user", {"IS": "true"}, "bad_type", "IS"),
    ("user", {"US": 0}, "bad_type", "US"),
    ("user", {"IL": 3}, "bad_type", "IL"),
    ("user", {"IF": "RFID_PLAIN"}, "bad_type", "IF"),
    ("user", {"IF": [1]}, "bad_type", "IF"),
    ("user", {"IF": ["A", "B", "C", "D", "E"]}, "bad_value", "IF"),
    ("user", {"IT": None}, "missing_key", "IT"),
    ("user", {"ID": 4711}, "bad_type", "ID"),
    ("user", {"ID": "x" * 65}, "bad_value", "ID"),
    ("user", {"ID": "04A1|B2C3"}, "bad_value", "|"),
    ("user", {"TT": 1}, "bad_type", "TT"),
    ("user", {"TT": "x" * 251}, "bad_value", "TT"),
    ("receipt", {"TX": None}, "missing_key", "TX"),
    ("receipt", {"TX": None, "tx": "B"}, "missing_key", "TX"),
    ("receipt", {"TX": 1}, "bad_type", "TX"),
    ("receipt", {"TX": True}, "bad_type", "TX"),
    ("receipt", {"TX": ["B"]}, "bad_type", "TX"),
    ("receipt", {"TX": "X"}, "bad_tx", "TX"),
    ("receipt", {"TX": "b"}, "bad_tx", "TX"),
    ("receipt", {"TX": "BE"}, "bad_tx", "TX"),
    ("receipt", {"TX": ""}, "bad_tx", "TX"),
    ("receipt", {"TX": "A"}, "bad_tx", "TX"),
]


@pytest.mark.parametrize(("node", "changes", "code", "named"), BAD_FIELDS)
async def test_bad_field_is_400_naming_the_problem(
    client: Client, meter: Meter, node: str, changes: dict[str, Any], code: str, named: str
) -> None:
    if node == "receipt":
        await ok_json(await post(client, "gw", GW))
    body = {k: v for k, v in {**VALID[node], **changes}.items() if v is not None}
    before = view.snapshot(meter)
    message = await expect_error(await post(client, node, body), 400, code)
    assert named in message
    assert view.snapshot(meter) == before


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_body_not_matching_its_content_encoding_is_400(client: Client, meter: Meter, encoding: str) -> None:
    before = view.snapshot(meter)
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    resp = await client.post(V1 + "gw", data=compact(GW), headers=headers)
    if encoding == "br":  # refused by aiohttp's HTTP parser (without Brotli) before the app sees it
        assert resp.status == 400
        assert "Traceback" not in await resp.text()
    else:
        await expect_error(resp, 400, "bad_json")
    assert view.snapshot(meter) == before


@pytest.mark.parametrize("node", GET_POST)
async def test_oversize_body_is_413_and_changes_nothing(client: Client, meter: Meter, node: str) -> None:
    body = compact({**VALID[node], "pad": "x" * MAX_BODY})
    assert len(body) > MAX_BODY
    before = view.snapshot(meter)
    message = await expect_error(await client.post(V1 + node, data=body), 413, "body_too_large")
    assert "8192" in message
    assert view.snapshot(meter) == before


async def test_body_of_exactly_8_kib_is_accepted(client: Client) -> None:
    body = compact(GW)
    body = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"
    assert len(body) == MAX_BODY
    assert (await ok_json(await client.post(V1 + "gw", data=body)))["CT"] == GW["CT"]


async def test_refused_requests_never_answer_5xx(client: Client) -> None:
    """A small fuzz over nodes, methods and odd bodies: every answer is 200 or a JSON 4xx."""
    bodies = [b"", b"{}", b"[]", b"{}" * 10, b'{"TX":null}', b'{"CT":{},"CI":{},"TM":{}}', b'{"IF":[[]]}', b"\x00"]
    for node in [*GET_POST, *GET_ONLY, "x"]:
        for method in ("GET", "POST", "PUT"):
            for raw in bodies:
                resp = await client.request(method, V1 + node, data=raw)
                text = await resp.text()
                assert resp.status < 500 or resp.status == 503, (method, node, raw, text)
                assert "Traceback" not in text
                if resp.status != 200:
                    assert set(json.loads(text)) == {"error", "message"}


# ---- transport: what libcurl sends, keep-alive -----------------------------------------------------------


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_chunked_post_with_expect_100_continue(client: Client) -> None:
    headers = {"Content-Type": "application/json", "Expect": "100-continue"}
    resp = await client.post(V1 + "gw", data=_chunks(compact(GW)), headers=headers, expect100=True)
    assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert (await ok_json(resp))["CT"] == "EVSEID"
    resp = await client.post(V1 + "tariff", data=_chunks(compact(TARIFF)), headers=headers, expect100=True)
    assert await ok_json(resp) == TARIFF


async def test_get_with_json_content_type_and_empty_body(client: Client) -> None:
    resp = await client.get(V1 + "metervalue", headers={"Content-Type": "application/json"})
    assert (await ok_json(resp))["MS"] == SERIAL
    resp = await client.get(V1 + "gw", headers={"Content-Type": "application/json"}, data=b"")
    assert (await ok_json(resp))["CT"] == ""


async def _raw_http(port: int, head: bytes, chunks: list[bytes] | None = None) -> tuple[bytes, bytes, bytes]:
    """Send one request the way libcurl does on a fresh connection; return (interim, head, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        interim = b""
        if chunks is not None:
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            for chunk in chunks:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = 0
        for line in response_head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        return interim, response_head, body
    finally:
        writer.close()
        await writer.wait_closed()


async def test_raw_socket_request_exactly_as_libcurl_sends_it(client: Client, meter: Meter) -> None:
    port = client.server.port
    assert port is not None
    body = compact(GW)
    head = (
        b"POST /counter/v1/ocmf/gw HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Accept: */*\r\n"
        b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n"
        b"\r\n"
    ) % port
    interim, response_head, response_body = await _raw_http(port, head, [body[:10], body[10:]])
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert response_head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/json" in response_head
    assert json.loads(response_body) == {"CT": "EVSEID", "CI": GW["CI"], "TM": GW_TM + " I"}
    assert meter.gw_written

    get_head = (
        b"GET /counter/v1/ocmf/metervalue HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: */*\r\n"
        b"Content-Type: application/json\r\n\r\n"
    ) % port
    _, response_head, response_body = await _raw_http(port, get_head)
    assert response_head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(response_body)["MS"] == SERIAL


async def test_raw_socket_refusal_is_json_too(client: Client) -> None:
    port = client.server.port
    assert port is not None
    head = (
        b"POST /counter/v1/ocmf/receipt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    )
    _, response_head, response_body = await _raw_http(port, head, [b'{"TX":', b'"Q"}'])
    assert response_head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(response_body)["error"] == "bad_tx"


async def test_a_body_that_stops_arriving_is_408_and_the_connection_closed_behind_it(
    aiohttp_server: ServerFactory, host: MeterHost, meter: Meter
) -> None:
    """Half a body, then nothing: 408 once the body timeout (0.2 s here) runs out, and the connection closed right
    behind the answer. Left to itself, aiohttp would first drain the unread rest of the body for its lingering
    time (an hour here) and close only then; ``send_raw`` reads to the end of the connection, so it would stop
    only at its hang guard."""
    server = await aiohttp_server(create_meter_app(host, body_timeout_s=0.2), lingering_time=3600)
    head = (
        b"POST /counter/v1/ocmf/tariff HTTP/1.1\r\nHost: meter\r\nContent-Type: application/json\r\n"
        b"Content-Length: 40\r\n\r\n"
    )
    before = view.snapshot(meter)
    received = await send_raw(server.host, server.port, head + b'{"TT":"0.4')
    assert_408_and_closed(received, 0.2)
    assert view.snapshot(meter) == before
    entry = host.journal.entries()[-1]
    assert (entry.method, entry.status, entry.error) == ("POST", 408, "request_timeout")


async def test_keep_alive_client_reuses_one_connection(client: Client) -> None:
    for _ in range(5):
        assert (await ok_json(await client.get(V1 + "metervalue")))["MS"] == SERIAL
    await ok_json(await post(client, "gw", GW))
    server = client.server.runner.server
    assert server is not None
    assert len(server.connections) == 1


async def test_new_connection_per_request(client: Client) -> None:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(3):
            async with session.get(client.make_url(V1 + "metervalue")) as resp:
                assert resp.status == 200
                assert resp.headers.get("Connection", "").lower() != "keep-alive"


# ---- response latency follows the simulation clock, journal -----------------------------------------------


async def test_response_latency_follows_the_sim_clock(client: Client, meter: Meter, clock: SimClock) -> None:
    meter.set_switches({"response_latency_ms": 2000})
    task = asyncio.create_task(client.get(V1 + "metervalue"))
    for _ in range(500):
        if clock.next_deadline() is not None:
            break
        await asyncio.sleep(0.002)
    assert clock.next_deadline() == pytest.approx(T0 + 2.0)
    clock.advance(1.5)
    await asyncio.sleep(0.01)
    assert not task.done()
    clock.advance(0.5)
    resp = await asyncio.wait_for(task, 5)
    body = await ok_json(resp)
    assert body["TM"] == "2025-06-15T15:06:42,000+0000 U"


async def test_journal_records_every_request(client: Client, host: MeterHost, clock: SimClock) -> None:
    await ok_json(await post(client, "gw", GW))
    await expect_error(await post(client, "receipt", {"TX": "Z"}), 400, "bad_tx")
    await expect_error(await client.get("/nope"), 404, "not_found")
    await expect_error(await client.delete(V1 + "gw"), 405, "method_not_allowed")
    entries = host.journal.entries()
    assert [(e.method, e.path, e.status, e.error) for e in entries] == [
        ("POST", V1 + "gw", 200, None),
        ("POST", V1 + "receipt", 400, "bad_tx"),
        ("GET", "/nope", 404, "not_found"),
        ("DELETE", V1 + "gw", 405, "method_not_allowed"),
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].body == GW
    assert entries[1].body == {"TX": "Z"}
    assert all(e.sim_time == clock.now() for e in entries)  # the frozen clock
    clock.advance(10)
    await ok_json(await client.get(V1 + "gw"))
    assert host.journal.entries(since=4)[0].sim_time == clock.now()


# ---- nesting depth (meter-api.md §1: deeper than 32 levels is 400 bad_json) ------------------------------


def nested_tariff(depth: int) -> bytes:
    """A tariff body whose ignored extra key makes the whole body ``depth`` levels deep."""
    return b'{"TT":"0,40 EUR/kWh","x":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("node", ["tariff", "gw", "user", "receipt", "datetime"])
async def test_a_body_nested_deeper_than_32_levels_is_400_and_changes_nothing(
    client: Client, host: MeterHost, node: str
) -> None:
    meter = host.meter
    before = view.snapshot(meter)
    for depth in (33, 980):
        raw = b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        resp = await client.post(V1 + node, data=raw, headers={"Content-Type": "application/json"})
        assert "32" in await expect_error(resp, 400, "bad_json")
    assert view.snapshot(meter) == before
    host.journal.flush()
    entries = host.journal.entries()
    assert len(entries) == 2
    for entry in entries:  # the journal keeps a short text of the refused body, not the body
        assert entry.error == "bad_json" and isinstance(entry.body, str) and len(entry.body) <= 200


async def test_a_body_32_levels_deep_is_accepted(client: Client, meter: Meter) -> None:
    raw = nested_tariff(32)
    assert (await ok_json(await client.post(V1 + "tariff", data=raw)))["TT"] == "0,40 EUR/kWh"
    await expect_error(await client.post(V1 + "tariff", data=nested_tariff(33)), 400, "bad_json")
    assert meter.get_tariff() == "0,40 EUR/kWh"
