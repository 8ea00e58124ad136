"""Transactions: B/E preconditions and their order, threshold, registers, records, receipts (meter-api.md §3.5-§3.6)."""

from __future__ import annotations

import json

import pytest

from iemdcr_twin.simulator.model import ReceiptAnswer, Refusal, Switches
from iemdcr_twin.simulator.model.meter import Meter
from tests.support.clock import FakeTime
from tests.support.meter import (
    GW,
    PAYLOAD_KEYS,
    USER,
    assert_verifies,
    charge,
    make_meter,
    metervalue,
    payload_of,
    pyocmf_rejects,
    ready_meter,
)


def refusal(meter: Meter, tx: str) -> tuple[int, str]:
    with pytest.raises(Refusal) as refused:
        meter.post_receipt({"TX": tx})
    return refused.value.status, refused.value.code


def visible_state(meter: Meter) -> tuple[object, ...]:
    """Everything a refused request must leave as it was."""
    return (
        metervalue(meter),
        meter.transaction,
        meter.registers.next_pagination,
        meter.last_receipt,
        meter.registers.last_transaction,
        len(meter.records),
    )


# ---- begin and end -----------------------------------------------------------------------------------


def test_begin_and_end_answer_tx_and_xt() -> None:
    meter = ready_meter(FakeTime())
    assert meter.post_receipt({"TX": "B"}) == ReceiptAnswer("B", True)
    assert metervalue(meter)["XT"] is True
    assert meter.post_receipt({"TX": "E"}) == ReceiptAnswer("E", False)
    assert metervalue(meter)["XT"] is False


@pytest.mark.parametrize("tx", ["b", "X", "", "BE"])
def test_other_tx_values_are_400_bad_tx(tx: str) -> None:
    meter = ready_meter(FakeTime())
    assert refusal(meter, tx) == (400, "bad_tx")


@pytest.mark.parametrize("body", [{}, {"TX": 1}, {"TX": None}, {"TX": ["B"]}])
def test_missing_or_mistyped_tx_is_400(body: dict[str, object]) -> None:
    meter = ready_meter(FakeTime())
    with pytest.raises(Refusal) as refused:
        meter.post_receipt(body)
    assert refused.value.status == 400
    assert meter.transaction is None


def test_end_without_transaction_is_428_no_transaction_and_harmless() -> None:
    meter = ready_meter(FakeTime())
    before = visible_state(meter)
    assert refusal(meter, "E") == (428, "no_transaction")
    assert visible_state(meter) == before


def test_begin_twice_is_428_transaction_running() -> None:
    meter = ready_meter(FakeTime())
    meter.post_receipt({"TX": "B"})
    begin = meter.transaction
    assert refusal(meter, "B") == (428, "transaction_running")
    assert meter.transaction is begin


def test_begin_needs_gw_this_power_cycle() -> None:
    meter = make_meter(FakeTime())
    assert refusal(meter, "B") == (428, "gw_not_set")
    assert meter.transaction is None


def test_begin_without_gw_allowed_by_switch_with_empty_ct_ci() -> None:
    time = FakeTime()
    meter = make_meter(time, switches=Switches(require_gw_for_transaction=False))
    record = charge(meter, time)
    payload = json.loads(payload_of(record))
    assert (payload["CT"], payload["CI"]) == ("", "")
    assert payload["RD"][0]["TM"].endswith(" U")


def test_precondition_order_for_begin() -> None:
    """503 meter_error, then 428 current_above_threshold, then gw_not_set, then transaction_running."""
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(50.0, 400.0)
    meter.raise_fault("sensor_unit_fault")
    assert refusal(meter, "B") == (503, "meter_error")
    meter.clear_fault("sensor_unit_fault")
    assert refusal(meter, "B") == (428, "current_above_threshold")
    meter.set_load(0.0)
    assert refusal(meter, "B") == (428, "gw_not_set")
    meter.post_gw(dict(GW))
    meter.post_receipt({"TX": "B"})
    meter.set_load(50.0)
    assert refusal(meter, "B") == (428, "current_above_threshold")
    meter.set_load(0.0)
    assert refusal(meter, "B") == (428, "transaction_running")


def test_precondition_order_for_end() -> None:
    """503 meter_error, then 428 current_above_threshold, then no_transaction."""
    meter = ready_meter(FakeTime())
    meter.set_load(50.0, 400.0)
    meter.raise_fault("signature_unit_fault")
    assert refusal(meter, "E") == (503, "meter_error")
    meter.clear_fault("signature_unit_fault")
    assert refusal(meter, "E") == (428, "current_above_threshold")
    meter.set_load(0.0)
    assert refusal(meter, "E") == (428, "no_transaction")


def test_validation_comes_before_meter_error() -> None:
    meter = ready_meter(FakeTime())
    meter.raise_fault("tamper_detected")
    assert refusal(meter, "Q") == (400, "bad_tx")


# ---- activation threshold ----------------------------------------------------------------------------


@pytest.mark.parametrize("current", [1.0, -1.0, 0.5, 0.0])
def test_current_at_or_below_threshold_allows_begin_and_end(current: float) -> None:
    meter = ready_meter(FakeTime())
    meter.set_load(current, 400.0)
    meter.post_receipt({"TX": "B"})
    meter.post_receipt({"TX": "E"})
    assert meter.registers.next_pagination == 2


@pytest.mark.parametrize("current", [1.001, -1.001, 100.0])
def test_current_above_threshold_refuses_begin_and_changes_nothing(current: float) -> None:
    meter = ready_meter(FakeTime())
    meter.set_load(current, 400.0)
    before = visible_state(meter)
    assert refusal(meter, "B") == (428, "current_above_threshold")
    assert visible_state(meter) == before
    assert int(metervalue(meter)["XS"], 16) & 0b1000


@pytest.mark.parametrize("current", [1.001, -1.001, 100.0])
def test_current_above_threshold_refuses_end_and_changes_nothing(current: float) -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.set_load(current, 400.0)
    time.advance(10)
    before = visible_state(meter)
    assert refusal(meter, "E") == (428, "current_above_threshold")
    assert visible_state(meter) == before
    assert meter.transaction is not None


def test_threshold_is_a_switch() -> None:
    meter = ready_meter(FakeTime(), switches=Switches(activation_threshold_A=5.0))
    meter.set_load(5.0, 400.0)
    meter.post_receipt({"TX": "B"})
    meter.set_load(5.5)
    assert refusal(meter, "E") == (428, "current_above_threshold")
    meter.set_switches({"activation_threshold_A": 6})
    meter.post_receipt({"TX": "E"})


def test_threshold_follows_a_ramp() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.set_load(100.0, 400.0)
    meter.set_load(0.0, ramp_s=100)
    time.advance(98)
    assert refusal(meter, "B") == (428, "current_above_threshold")
    time.advance(1)
    meter.post_receipt({"TX": "B"})


# ---- transaction registers ---------------------------------------------------------------------------


def test_transaction_registers_reset_at_begin_and_freeze_after_end() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    charge(meter, time, 100.0, 400.0, 360)  # 4 kWh
    assert metervalue(meter)["RD"][2]["WV"] == "00000004.000"
    meter.set_load(-10.0, 400.0)  # export while idle: absolute moves, transaction stays frozen
    time.advance(360)
    meter.set_load(0.0)
    value = metervalue(meter)
    assert value["RD"][1]["RV"] == "00000000.400"
    assert (value["RD"][2]["WV"], value["RD"][3]["WV"]) == ("00000004.000", "00000000.000")
    meter.post_receipt({"TX": "B"})
    value = metervalue(meter)
    assert (value["RD"][2]["WV"], value["RD"][3]["WV"]) == ("00000000.000", "00000000.000")
    assert value["RD"][0]["RV"] == "00000004.000"
    meter.set_load(-20.0)
    time.advance(180)
    meter.set_load(0.0)
    value = metervalue(meter)
    assert (value["RD"][2]["WV"], value["RD"][3]["WV"]) == ("00000000.000", "00000000.400")
    assert value["RD"][1]["RV"] == "00000000.800"


def test_transaction_registers_are_zero_after_power_up() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    charge(meter, time)
    meter.power_off()
    meter.power_on()
    value = metervalue(meter)
    assert (value["RD"][2]["WV"], value["RD"][3]["WV"]) == ("00000000.000", "00000000.000")
    assert value["RD"][0]["RV"] == "00000004.000"


# ---- records -----------------------------------------------------------------------------------------


def test_record_verifies_with_pyocmf_strict() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    record = charge(meter, time)
    parsed = assert_verifies(record, meter.get_publickey().PK)
    assert parsed is not None
    assert not record.endswith("\n")
    assert record.isascii()
    assert record.count("|") == 2


def test_record_content() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    record = charge(meter, time)
    payload = json.loads(payload_of(record))
    assert list(payload) == PAYLOAD_KEYS
    assert payload["FV"] == "1.0"
    assert payload["GI"] == "Isabellenhuette IEM-DCR-125-1000-32-00-006-B_000"
    assert payload["GS"] == payload["MS"] == "1ISA0200000001"
    assert (payload["CT"], payload["CI"]) == ("EVSEID", "DE*ISA*E0001")
    assert (payload["IS"], payload["IL"], payload["IF"]) == (True, "VERIFIED", ["RFID_PLAIN"])
    assert (payload["IT"], payload["ID"], payload["PG"]) == ("ISO14443", "04A1B2C3", "T1")
    assert payload["TT"] == "0.49 EUR/kWh"
    begin, end = payload["RD"]
    assert list(begin) == list(end) == ["TM", "TX", "EF", "ST", "RV", "RI", "RU", "RT"]
    assert begin == {
        "TM": "2025-06-06T09:26:24,000+0100 I",
        "TX": "B",
        "EF": "",
        "ST": "G",
        "RV": "00000000.000",
        "RI": "1-b:1.8.e",
        "RU": "kWh",
        "RT": "DC",
    }
    assert (end["TM"], end["TX"], end["RV"]) == ("2025-06-06T09:32:24,000+0100 I", "E", "00000004.000")


def test_record_without_tariff_omits_tt() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    payload = json.loads(payload_of(charge(meter, time)))
    assert "TT" not in payload
    assert_verifies(charge(meter, time), meter.get_publickey().PK)


def test_user_and_tariff_in_force_at_begin_are_signed() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_user({**USER, "ID": "04DEADBE", "TT": "0.39 EUR/kWh"})
    meter.post_receipt({"TX": "B"})
    meter.post_receipt({"TX": "E"})
    meter.post_user({**USER, "ID": "04000000", "TT": "9.99 EUR/kWh"})
    payload = json.loads(payload_of(meter.get_receipt()))
    assert (payload["ID"], payload["TT"]) == ("04DEADBE", "0.39 EUR/kWh")


def test_records_carry_the_absolute_import_register_only() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    charge(meter, time)
    payload = json.loads(payload_of(charge(meter, time, 50.0, 400.0, 360)))
    assert [reading["RV"] for reading in payload["RD"]] == ["00000004.000", "00000006.000"]
    assert {reading["RI"] for reading in payload["RD"]} == {"1-b:1.8.e"}


def test_pagination_strictly_plus_one_and_every_record_verifies() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    pages = []
    for n in range(5):
        record = charge(meter, time, 10.0 * (n + 1), 400.0, 60)
        assert_verifies(record, meter.get_publickey().PK)
        pages.append(json.loads(payload_of(record))["PG"])
        if n == 2:
            meter.power_off()
            meter.power_on()
            meter.post_gw(dict(GW))
            meter.post_user(dict(USER))
    assert pages == ["T1", "T2", "T3", "T4", "T5"]
    assert [record.pagination for record in meter.records] == [1, 2, 3, 4, 5]


def test_refused_and_defensive_ends_do_not_use_pagination_numbers() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    for _ in range(3):
        with pytest.raises(Refusal):
            meter.post_receipt({"TX": "E"})
    assert json.loads(payload_of(charge(meter, time)))["PG"] == "T1"


def test_records_are_reproducible_with_a_seeded_key() -> None:
    records = []
    for _ in range(2):
        time = FakeTime()
        meter = ready_meter(time)
        records.append(charge(meter, time))
    assert records[0] == records[1]


def test_raw_signature_encoding_switch_makes_pyocmf_reject() -> None:
    time = FakeTime()
    meter = ready_meter(time, switches=Switches(signature_encoding="raw"))
    record = charge(meter, time)
    signature = json.loads(record.split("|")[2])
    assert len(signature["SD"]) == 128
    assert pyocmf_rejects(record, meter.get_publickey().PK)


def test_free_text_ct_and_uuid_id_are_signed_faithfully_and_strict_verifiers_reject() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw({"CT": "DC-Test-Charger", "CI": "lab", "TM": GW["TM"]})
    meter.post_user({**USER, "ID": "0b4b4c3e-4c2a-4d0e-9a55-5d8f0e1b2c3d"})
    record = charge(meter, time)
    payload = json.loads(payload_of(record))
    assert (payload["CT"], payload["ID"]) == ("DC-Test-Charger", "0b4b4c3e-4c2a-4d0e-9a55-5d8f0e1b2c3d")
    assert pyocmf_rejects(record, meter.get_publickey().PK)


# ---- receipt and transaction nodes -------------------------------------------------------------------


def test_get_receipt_404_before_any_record() -> None:
    meter = ready_meter(FakeTime())
    with pytest.raises(Refusal) as refused:
        meter.get_receipt()
    assert (refused.value.status, refused.value.code) == (404, "no_record")


def test_get_transaction_404_when_there_never_was_one() -> None:
    meter = ready_meter(FakeTime())
    with pytest.raises(Refusal) as refused:
        meter.get_transaction()
    assert (refused.value.status, refused.value.code) == (404, "no_record")


def test_receipt_and_transaction_serve_the_same_bytes() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    first = charge(meter, time)
    second = charge(meter, time)
    assert first != second
    assert meter.get_receipt() == meter.get_transaction() == second
    assert meter.records[-1].ocmf == second


def test_receipt_served_while_next_transaction_runs() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    first = charge(meter, time)
    meter.post_receipt({"TX": "B"})
    assert meter.get_receipt() == first


def test_signature_delay_gives_425_until_the_delay_passed() -> None:
    time = FakeTime()
    meter = ready_meter(time, switches=Switches(signature_delay_ms=1500))
    meter.post_receipt({"TX": "B"})
    meter.post_receipt({"TX": "E"})
    with pytest.raises(Refusal) as pending:
        meter.get_receipt()
    assert (pending.value.status, pending.value.code) == (425, "signature_pending")
    time.advance(1.499)
    with pytest.raises(Refusal):
        meter.get_receipt()
    time.advance(0.001)
    assert meter.get_receipt().startswith("OCMF|")
