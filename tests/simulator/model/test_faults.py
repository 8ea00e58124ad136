"""The fault catalogue and what each fault does, idle and mid-transaction (meter-api.md §3.8)."""

from __future__ import annotations

import json

import pytest
from pyocmf import OCMF

from iemdcr_twin.simulator.model import CATALOGUE, ReceiptAnswer, Refusal
from iemdcr_twin.simulator.model.faults import combined_xc, fault_bits, worst
from tests.support.clock import FakeTime
from tests.support.meter import GW, HEALTHY_XC, charge, metervalue, payload_of, pyocmf_rejects, ready_meter

EXPECTED = {
    # name: (XC, ST, EF, blocks receipts, XS fault bit)
    "sensor_unit_fault": ("0x0001, 0x00000000, 0x00, 0x00", "F", "E", True, 8),
    "voltage_out_of_range": ("0x0002, 0x00000000, 0x00, 0x00", "O", "E", True, 9),
    "tamper_detected": ("0x0004, 0x00000000, 0x00, 0x00", "M", "E", True, 10),
    "clock_lost": ("0x0008, 0x00000800, 0x00, 0x00", "G", "t", False, 11),
    "signature_unit_fault": ("0x0010, 0x00000000, 0x00, 0x00", "E", "", True, 12),
}
ABORTING = ["sensor_unit_fault", "voltage_out_of_range", "tamper_detected"]


def test_catalogue_names_and_order() -> None:
    assert [fault.name for fault in CATALOGUE] == list(EXPECTED)
    for fault in CATALOGUE:
        described = fault.as_dict()
        assert list(described) == ["name", "description", "XC", "ST", "EF", "blocks_receipts", "mid_transaction"]
        assert described["description"] and described["mid_transaction"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_shows_in_metervalue(name: str) -> None:
    xc, st, ef, _, bit = EXPECTED[name]
    meter = ready_meter(FakeTime())
    meter.raise_fault(name)
    value = metervalue(meter)
    assert (value["XC"], value["ST"], value["EF"]) == (xc, st, ef)
    xs = int(value["XS"], 16)
    assert xs & ~0xFF == 1 << bit
    assert xs & 0b10  # gw still written
    meter.clear_fault(name)
    value = metervalue(meter)
    assert (value["XC"], value["ST"], value["EF"]) == (HEALTHY_XC, "G", "")
    assert int(value["XS"], 16) & ~0xFF == 0


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fault_blocks_receipts_or_not(name: str) -> None:
    blocks = EXPECTED[name][3]
    meter = ready_meter(FakeTime())
    meter.raise_fault(name)
    if blocks:
        for tx in ("B", "E"):
            with pytest.raises(Refusal) as refused:
                meter.post_receipt({"TX": tx})
            assert (refused.value.status, refused.value.code) == (503, "meter_error")
        assert meter.transaction is None
    else:
        assert meter.post_receipt({"TX": "B"}) == ReceiptAnswer("B", True)


def test_several_faults_or_their_bits_and_the_most_severe_decides_st_ef() -> None:
    meter = ready_meter(FakeTime())
    meter.raise_fault("clock_lost")
    meter.raise_fault("voltage_out_of_range")
    value = metervalue(meter)
    assert value["XC"] == "0x000A, 0x00000800, 0x00, 0x00"
    assert (value["ST"], value["EF"]) == ("O", "E")
    assert int(value["XS"], 16) >> 8 == 0b01010
    meter.raise_fault("tamper_detected")
    assert (metervalue(meter)["ST"], metervalue(meter)["EF"]) == ("M", "E")
    meter.raise_fault("sensor_unit_fault")
    assert metervalue(meter)["ST"] == "M"
    meter.clear_fault("tamper_detected")
    assert metervalue(meter)["ST"] == "F"


def test_fault_helpers_on_every_combination() -> None:
    names = list(EXPECTED)
    for mask in range(1 << len(names)):
        active = frozenset(name for index, name in enumerate(names) if mask >> index & 1)
        assert fault_bits(active) == mask << 8
        fields = [0, 0, 0, 0]
        for name in active:
            parts = [int(part, 16) for part in EXPECTED[name][0].split(", ")]
            fields = [a | b for a, b in zip(fields, parts, strict=True)]
        assert combined_xc(active) == f"0x{fields[0]:04X}, 0x{fields[1]:08X}, 0x{fields[2]:02X}, 0x{fields[3]:02X}"
        assert (worst(active) is None) == (not active)


def test_raising_twice_and_clearing_an_inactive_fault_are_harmless() -> None:
    meter = ready_meter(FakeTime())
    meter.raise_fault("clock_lost")
    meter.raise_fault("clock_lost")
    assert meter.faults == frozenset({"clock_lost"})
    assert meter.counters["faults_raised"] == 1
    meter.clear_fault("tamper_detected")
    assert meter.faults == frozenset({"clock_lost"})


def test_unknown_fault_is_a_key_error() -> None:
    meter = ready_meter(FakeTime())
    with pytest.raises(KeyError):
        meter.raise_fault("gremlins")
    with pytest.raises(KeyError):
        meter.clear_fault("gremlins")
    assert meter.faults == frozenset()


def test_metervalue_keeps_answering_in_error_state() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.set_load(10.0, 400.0)
    meter.raise_fault("sensor_unit_fault")
    time.advance(360)
    value = metervalue(meter)
    assert value["RD"][0]["RV"] == "00000000.400"
    assert value["I"] == 10.0


@pytest.mark.parametrize("name", ABORTING)
def test_aborting_fault_mid_transaction_ends_it_with_reason_a(name: str) -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    time.advance(360)
    meter.raise_fault(name)
    assert meter.transaction is None
    assert metervalue(meter)["XT"] is False
    record = meter.get_receipt()
    assert meter.get_transaction() == record
    payload = json.loads(payload_of(record))
    _, st, ef, _, _ = EXPECTED[name]
    begin, end = payload["RD"]
    assert (begin["TX"], begin["ST"], begin["EF"]) == ("B", "G", "")
    assert (end["TX"], end["ST"], end["EF"], end["RV"]) == ("A", st, ef, "00000004.000")
    assert payload["PG"] == "T1"
    assert meter.records[-1].reason == "A"
    parsed = OCMF.from_string(record, strict=True)
    assert parsed.verify_signature(meter.get_publickey().PK) is True
    assert parsed.check_eichrecht(errors_only=True) != []  # not billable, by design
    assert metervalue(meter)["RD"][2]["WV"] == "00000004.000"  # frozen like after E


def test_clock_lost_mid_transaction_makes_time_unknown_and_the_transaction_goes_on() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.raise_fault("clock_lost")
    assert meter.transaction is not None
    assert meter.get_datetime().endswith(" U")
    assert not int(metervalue(meter)["XS"], 16) & 0b100
    meter.post_receipt({"TX": "E"})
    end = json.loads(payload_of(meter.get_receipt()))["RD"][1]
    assert (end["TX"], end["ST"], end["EF"]) == ("E", "G", "t")
    assert end["TM"].endswith(" U")
    assert OCMF.from_string(meter.get_receipt(), strict=True).verify_signature(meter.get_publickey().PK) is True


def test_clock_lost_time_stays_unknown_until_written_again() -> None:
    meter = ready_meter(FakeTime())
    meter.raise_fault("clock_lost")
    meter.clear_fault("clock_lost")
    assert meter.get_datetime().endswith(" U")
    assert meter.post_datetime({"TM": GW["TM"]}).endswith(" I")


def test_signature_unit_fault_keeps_the_transaction_open_until_cleared() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    time.advance(180)
    meter.raise_fault("signature_unit_fault")
    assert meter.transaction is not None
    time.advance(180)
    meter.set_load(0.0)
    for _ in range(2):
        with pytest.raises(Refusal) as refused:
            meter.post_receipt({"TX": "E"})
        assert (refused.value.status, refused.value.code) == (503, "meter_error")
    assert meter.registers.next_pagination == 1
    assert metervalue(meter)["XT"] is True
    meter.clear_fault("signature_unit_fault")
    meter.post_receipt({"TX": "E"})
    payload = json.loads(payload_of(meter.get_receipt()))
    assert payload["RD"][1]["TX"] == "E"
    assert payload["RD"][1]["RV"] == "00000004.000"
    assert not pyocmf_rejects(meter.get_receipt(), meter.get_publickey().PK)


def test_aborting_fault_while_idle_makes_no_record() -> None:
    meter = ready_meter(FakeTime())
    meter.raise_fault("tamper_detected")
    assert meter.records == []
    with pytest.raises(Refusal):
        meter.get_receipt()


def test_fault_in_force_at_begin_is_in_the_begin_reading() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.raise_fault("clock_lost")
    record = charge(meter, time)
    begin = json.loads(payload_of(record))["RD"][0]
    assert (begin["ST"], begin["EF"]) == ("G", "t")
