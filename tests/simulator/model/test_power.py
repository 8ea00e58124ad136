"""Power cycles: the volatile/non-volatile split, and power loss mid-transaction (meter-api.md §3.1, §3.9)."""

from __future__ import annotations

import json

import pytest

from iemdcr_twin.simulator.model import RamMemory, Refusal
from tests.support.clock import FakeTime
from tests.support.meter import GW, USER, assert_verifies, charge, make_meter, metervalue, payload_of, ready_meter


def test_power_cycle_resets_volatile_state() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    charge(meter, time)
    meter.power_off()
    assert not meter.powered
    meter.power_on()
    assert meter.powered
    assert meter.get_gw().CT == "" and meter.get_gw().CI == ""
    assert not meter.gw_written
    assert meter.get_datetime().endswith("+0000 U")
    assert meter.get_tariff() == ""
    assert meter.get_user().ID == ""
    with pytest.raises(Refusal) as refused:
        meter.get_receipt()
    assert (refused.value.status, refused.value.code) == (404, "no_record")
    assert int(metervalue(meter)["XS"], 16) == 0
    assert meter.counters["power_cycles"] == 1


def test_power_cycle_keeps_non_volatile_state() -> None:
    time = FakeTime()
    memory = RamMemory()
    meter = ready_meter(time, memory)
    record = charge(meter, time)
    key = meter.get_publickey()
    meter.power_off()
    meter.power_on()
    assert meter.get_publickey() == key
    assert meter.get_transaction() == record
    assert metervalue(meter)["RD"][0]["RV"] == "00000004.000"
    assert meter.registers.next_pagination == 2
    assert memory.state is not None
    assert (memory.state.import_uj, memory.state.next_pagination, memory.state.last_transaction) == (
        meter.registers.import_uj,
        2,
        record,
    )


def test_power_off_persists_the_registers() -> None:
    time = FakeTime()
    memory = RamMemory()
    meter = make_meter(time, memory)
    meter.set_load(10.0, 400.0)
    time.advance(360)
    meter.power_off()
    assert memory.state is not None
    assert memory.state.import_uj == 400_000 * 3_600_000


def test_no_energy_is_counted_while_off() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(10.0, 400.0)
    meter.power_off()
    time.advance(3600)
    meter.power_on()
    assert meter.registers.import_mwh == 0
    time.advance(360)
    assert metervalue(meter)["RD"][0]["RV"] == "00000000.400"


def test_power_off_and_on_twice_are_harmless() -> None:
    meter = make_meter(FakeTime())
    meter.power_on()
    assert meter.counters["power_cycles"] == 0
    meter.power_off()
    meter.power_off()
    meter.power_on()
    assert meter.counters["power_cycles"] == 1


def test_power_loss_mid_transaction_signs_a_reason_p_record() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    time.advance(360)
    meter.power_off()
    assert meter.transaction is None
    time.advance(60)
    meter.power_on()
    record = meter.get_transaction()
    payload = json.loads(payload_of(record))
    begin, end = payload["RD"]
    assert (end["TX"], end["ST"], end["EF"], end["RV"]) == ("P", "G", "", "00000004.000")
    assert end["TM"] == "2025-06-06T09:32:24,000+0100 I"  # the moment of power loss
    assert begin["TX"] == "B"
    assert meter.records[-1].reason == "P"
    assert payload["PG"] == "T1"
    parsed = json.loads(record.split("|")[2])
    assert parsed["SA"] == "ECDSA-secp256r1-SHA256"
    with pytest.raises(Refusal):
        meter.get_receipt()  # the receipt of the last power cycle is volatile
    assert metervalue(meter)["XT"] is False
    assert metervalue(meter)["RD"][2]["WV"] == "00000000.000"


def test_p_record_verifies_and_pagination_continues() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.power_off()
    meter.power_on()
    assert_verifies(meter.get_transaction(), meter.get_publickey().PK)
    meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    assert json.loads(payload_of(charge(meter, time)))["PG"] == "T2"


def test_memory_is_written_before_the_end_is_acknowledged() -> None:
    """TX E writes one durable record; a meter rebuilt from memory right after it (a crash before the next
    checkpoint) continues the pagination, serves that record and keeps the registers it saw."""
    time = FakeTime()
    memory = RamMemory()
    meter = ready_meter(time, memory)
    record = charge(meter, time)
    assert [saved.ocmf for saved in memory.records] == [record]
    reborn = make_meter(time, memory)
    assert reborn.registers.next_pagination == 2
    assert reborn.get_transaction() == record
    assert (
        reborn.registers.import_uj == meter.registers.import_uj
        and reborn.registers.export_uj == meter.registers.export_uj
    )
    assert memory.state is not None and memory.state.next_pagination == 2  # reconciled on load


def test_registers_persisted_at_begin_and_by_checkpoint() -> None:
    time = FakeTime()
    memory = RamMemory()
    meter = ready_meter(time, memory)
    meter.set_load(10.0, 400.0)
    time.advance(360)
    meter.set_load(0.0)
    meter.post_receipt({"TX": "B"})
    assert memory.state is not None and memory.state.import_uj == 400_000 * 3_600_000
    meter.set_load(10.0)
    time.advance(360)
    saves = memory.saves
    assert meter.checkpoint() is True
    assert memory.saves == saves + 1
    assert memory.state.import_uj == 800_000 * 3_600_000
    meter.set_load(0.0)
    time.advance(10)
    assert meter.checkpoint() is False  # nothing moved, no write
    assert memory.saves == saves + 1


def test_reading_does_not_write_memory() -> None:
    time = FakeTime()
    memory = RamMemory()
    meter = make_meter(time, memory)
    meter.set_load(10.0, 400.0)
    saves = memory.saves
    for _ in range(100):
        time.advance(1)
        metervalue(meter)
    assert memory.saves == saves
