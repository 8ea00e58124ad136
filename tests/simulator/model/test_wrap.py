"""The registers wrap to zero after 99999999.999 kWh, like a meter register (meter-api.md §3.4).

A record across the wrap is signed and verifies, but it is not billable (its end is below its begin, which
pyocmf's legal check refuses); the transaction registers and every energy difference count across the wrap.
"""

from __future__ import annotations

import json
import warnings

import pytest
from pyocmf import OCMF

from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.model import Refusal, StorageError
from iemdcr_twin.simulator.model.energy import (
    REGISTER_WRAP_MWH,
    REGISTER_WRAP_UJ,
    UJ_PER_MWH,
    format_kwh,
    register_delta,
    wrap_uj,
)
from iemdcr_twin.simulator.model.memory import RamMemory
from tests.support.clock import FakeTime
from tests.support.meter import FullMemory, charge, make_meter, metervalue, payload_of, ready_meter

KWH = 1_000_000  # mWh


def test_register_delta_counts_across_the_wrap_and_sees_a_step_back() -> None:
    assert register_delta(5, 9) == 4
    assert register_delta(REGISTER_WRAP_UJ - 3, 2) == 5
    assert register_delta(9, 5) == -4
    assert register_delta(2, REGISTER_WRAP_UJ - 3) == -5
    assert register_delta(99_999_990_000, 10_000, 10**11) == 20_000  # Wh: 99999990.000 -> 00000010.000 kWh
    assert wrap_uj(REGISTER_WRAP_UJ + 7) == 7
    assert format_kwh(REGISTER_WRAP_MWH - 1) == "99999999.999"
    assert format_kwh(REGISTER_WRAP_MWH + 1_000) == "00000000.001"


def test_a_register_that_runs_past_its_width_wraps_to_zero() -> None:
    """Issue 12: 1.5 MW for 70,000 h of simulated time gave RV ``100002583.333``, 9 integer digits."""
    time = FakeTime()
    meter = make_meter(time, profile="iem-dcr-1500")
    meter.set_load(1500.0, 1000.0)
    time.advance(70_000 * 3600)  # 105,000,000 kWh
    value = metervalue(meter)
    assert value["RD"][0]["RV"] == "05000000.000"
    assert meter.registers.import_mwh == 105_000_000 * KWH - REGISTER_WRAP_MWH
    assert 0 <= meter.registers.import_uj < REGISTER_WRAP_UJ


def charge_across_the_wrap(memory: RamMemory | None = None) -> tuple[str, str, dict[str, object]]:
    """From 99999990.000 kWh, 20 kWh in one transaction; returns the record, the public key, the live values after
    it (the transaction registers stay frozen at the end)."""
    time = FakeTime()
    meter = ready_meter(time, memory)
    meter.set_registers(REGISTER_WRAP_MWH - 10 * KWH)
    record = charge(meter, time, 125.0, 800.0, 12 * 60)  # 100 kW
    return record, meter.get_publickey().PK, metervalue(meter)


def test_a_record_across_the_wrap_verifies_but_is_not_billable() -> None:
    record, public_key, live = charge_across_the_wrap()
    readings = json.loads(payload_of(record))["RD"]
    assert (readings[0]["RV"], readings[-1]["RV"]) == ("99999990.000", "00000010.000")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = OCMF.from_string(record, strict=True)
    assert parsed.verify_signature(public_key) is True
    problems = parsed.check_eichrecht(errors_only=True)
    assert [(problem.code.value, problem.field) for problem in problems] == [("VALUE_REGRESSION", "RV")]
    registers = live["RD"]
    assert [registers[0]["RV"], registers[2]["WV"]] == ["00000010.000", "00000020.000"]  # type: ignore[index]


def test_a_restart_after_the_wrap_keeps_the_wrapped_registers() -> None:
    """The state saved at B is from before the wrap, the record from after it: the record is ahead."""
    memory = RamMemory()
    charge_across_the_wrap(memory)
    assert memory.state is not None and memory.state.import_uj > REGISTER_WRAP_UJ // 2
    again = make_meter(FakeTime(), memory)
    assert metervalue(again)["RD"][0]["RV"] == "00000010.000"
    assert again.registers.next_pagination == 2


def test_set_registers_is_refused_during_a_transaction_and_for_values_beyond_the_width() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    for value in (-1, REGISTER_WRAP_MWH, 1.5, True, "7"):
        with pytest.raises(Refusal, match="import_mWh must be a whole number from 0 to 99999999999999") as bad:
            meter.set_registers(value)  # type: ignore[arg-type]
        assert (bad.value.status, bad.value.code) == (400, "bad_value")
    meter.post_receipt({"TX": "B"})
    with pytest.raises(Refusal) as running:
        meter.set_registers(5)
    assert (running.value.status, running.value.code) == (428, "transaction_running")
    assert meter.registers.import_mwh == 0


def test_set_registers_is_saved_before_it_counts() -> None:
    time, memory = FakeTime(), FullMemory()
    meter = make_meter(time, memory)
    memory.full = True
    with pytest.raises(StorageError):
        meter.set_registers(REGISTER_WRAP_MWH - 1, 42)
    assert (meter.registers.import_uj, meter.registers.export_uj) == (0, 0)
    memory.full = False
    meter.set_registers(REGISTER_WRAP_MWH - 1, 42)
    assert memory.state is not None
    assert (memory.state.import_uj, memory.state.export_uj) == ((REGISTER_WRAP_MWH - 1) * UJ_PER_MWH, 42 * UJ_PER_MWH)
    assert view.snapshot(meter)["registers"]["import_kWh"] == "99999999.999"
