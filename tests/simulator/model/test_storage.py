"""A write that fails leaves the meter as it was (meter-api.md §1, 503 ``storage_error``; docs/persistence.md).

Every operation that must make something durable asks memory first and commits only after it returned, so a
full disk refuses the request with a ``StorageError`` and the meter stays as it was; once memory accepts writes
again, the same request succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.model import Meter, ReceiptAnswer, Refusal, StorageError
from tests.support.clock import FakeTime
from tests.support.meter import FullMemory, assert_verifies, charge, make_meter, metervalue, ready_meter


def refused_without_change(meter: Meter, memory: FullMemory, operation: Callable[[], Any]) -> StorageError:
    before = view.snapshot(meter)
    saved, records = memory.state, list(memory.records)
    with pytest.raises(StorageError) as refused:
        operation()
    assert (refused.value.status, refused.value.code) == (503, "storage_error")
    assert isinstance(refused.value, Refusal)  # the meter API answers it like every refusal
    assert view.snapshot(meter) == before
    assert (memory.state, memory.records) == (saved, records)
    return refused.value


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def memory() -> FullMemory:
    return FullMemory()


@pytest.fixture
def meter(time: FakeTime, memory: FullMemory) -> Meter:
    return ready_meter(time, memory)


def test_b_does_not_begin_on_a_full_disk_and_begins_once_space_is_back(
    meter: Meter, memory: FullMemory, time: FakeTime
) -> None:
    meter.set_load(50.0, 400.0)
    time.advance(60)
    meter.set_load(0.0)
    memory.full = True
    refused_without_change(meter, memory, lambda: meter.post_receipt({"TX": "B"}))
    assert metervalue(meter)["XT"] is False and meter.counters["transactions"] == 0
    memory.full = False
    assert meter.post_receipt({"TX": "B"}) == ReceiptAnswer("B", True)
    assert memory.state is not None and memory.state.import_uj == meter.registers.import_uj


def test_e_leaves_the_transaction_open_on_a_full_disk(meter: Meter, memory: FullMemory, time: FakeTime) -> None:
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    time.advance(360)
    meter.set_load(0.0)
    memory.full = True
    pg = meter.registers.next_pagination
    refused_without_change(meter, memory, lambda: meter.post_receipt({"TX": "E"}))
    assert meter.transaction is not None and meter.registers.next_pagination == pg
    with pytest.raises(Refusal, match="no transaction finished"):
        meter.get_receipt()
    memory.full = False
    assert meter.post_receipt({"TX": "E"}) == ReceiptAnswer("E", False)
    assert meter.records[-1].pagination == pg
    assert_verifies(meter.get_receipt(), meter.get_publickey().PK)


@pytest.mark.parametrize("running", [False, True])
def test_power_off_is_refused_and_leaves_the_meter_powered(
    meter: Meter, memory: FullMemory, time: FakeTime, running: bool
) -> None:
    if running:
        meter.post_receipt({"TX": "B"})
    meter.set_load(10.0, 400.0)
    time.advance(60)
    memory.full = True
    refused_without_change(meter, memory, meter.power_off)
    assert meter.powered and (meter.transaction is not None) == running
    memory.full = False
    meter.power_off()
    assert not meter.powered
    if running:
        assert meter.records[-1].reason == "P"


def test_a_fault_that_must_sign_an_a_record_is_not_raised(meter: Meter, memory: FullMemory) -> None:
    meter.post_receipt({"TX": "B"})
    memory.full = True
    refused_without_change(meter, memory, lambda: meter.raise_fault("sensor_unit_fault"))
    assert meter.faults == frozenset() and meter.transaction is not None
    meter.raise_fault("clock_lost")  # needs no write: raised
    assert meter.faults == {"clock_lost"}
    memory.full = False
    meter.raise_fault("sensor_unit_fault")
    assert meter.transaction is None and meter.records[-1].reason == "A"
    assert '"EF":"E"' in meter.records[-1].ocmf  # the end reading shows the fault being raised


def test_factory_reset_keeps_the_old_identity_when_the_new_one_cannot_be_saved(
    meter: Meter, memory: FullMemory, time: FakeTime
) -> None:
    charge(meter, time)
    memory.full = True
    refused_without_change(meter, memory, meter.factory_reset)
    memory.full = False
    old = meter.signer.fingerprint
    meter.factory_reset()
    assert meter.signer.fingerprint != old and meter.registers.next_pagination == 1
    assert memory.state is not None and memory.state.key_generation == 1


def test_checkpoint_raises_and_the_next_one_saves(meter: Meter, memory: FullMemory, time: FakeTime) -> None:
    meter.set_load(10.0, 400.0)
    time.advance(60)
    memory.full = True
    with pytest.raises(StorageError):
        meter.checkpoint()
    memory.full = False
    assert meter.checkpoint() is True
    assert memory.state is not None and memory.state.import_uj == meter.registers.import_uj


def test_a_restart_on_a_full_disk_repairs_from_the_records_without_writing(time: FakeTime) -> None:
    """The state lags a record (E writes only the record); the write-back of the repair waits for space."""
    memory = FullMemory()
    meter = ready_meter(time, memory)
    record = charge(meter, time)
    assert memory.state is not None and memory.state.next_pagination == 1  # state.json not written at E
    memory.full = True
    again = make_meter(time, memory)
    assert (again.registers.next_pagination, again.get_transaction()) == (2, record)
    assert memory.state.next_pagination == 1
    memory.full = False
    assert again.checkpoint() is True
    assert memory.state.next_pagination == 2
