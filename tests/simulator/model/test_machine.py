"""Hypothesis drives the meter model as a state machine: the invariants of the spec's reliability targets."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pyocmf import OCMF

from simulator.model import CATALOGUE, RamMemory, Refusal
from simulator.model.energy import parse_kwh
from tests.simulator.helpers import GW, USER, FakeTime, make_meter

FAULT_NAMES = [fault.name for fault in CATALOGUE]


class MeterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.time = FakeTime()
        self.memory = RamMemory()
        self.meter = make_meter(self.time, self.memory)
        self.public_key = self.meter.get_publickey()["PK"]
        self.shown = ("00000000.000", "00000000.000")
        self.signed_max = 0
        self.seen_records = 0

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.meter, method)(*args)
        except Refusal as refusal:
            assert refusal.status in (400, 404, 425, 428, 503)
            return refusal

    @rule(
        current=st.one_of(st.floats(-1.0, 1.0), st.floats(-200, 200)),
        voltage=st.floats(0, 1000),
        ramp=st.sampled_from([0.0, 0.0, 5.0, 120.0]),
    )
    def load(self, current: float, voltage: float, ramp: float) -> None:
        self.meter.set_load(current, voltage, ramp)

    @rule()
    def load_off(self) -> None:
        self.meter.set_load(0.0)

    @rule(seconds=st.floats(0.001, 3600))
    def advance(self, seconds: float) -> None:
        self.time.advance(seconds)

    @precondition(lambda self: self.meter.powered)
    @rule()
    def post_gw(self) -> None:
        answer = self._call("post_gw", dict(GW))
        if isinstance(answer, Refusal):
            assert answer.code == "gw_already_set"

    @precondition(lambda self: self.meter.powered)
    @rule()
    def post_user(self) -> None:
        self._call("post_user", dict(USER))

    @precondition(lambda self: self.meter.powered)
    @rule(tx=st.sampled_from(["B", "E", "B", "E", "X"]))
    def receipt(self, tx: str) -> None:
        running = self.meter.transaction is not None
        answer = self._call("post_receipt", {"TX": tx})
        if not isinstance(answer, Refusal):
            assert answer == {"TX": tx, "XT": tx == "B"}
            assert running == (tx == "E")

    @precondition(lambda self: self.meter.powered)
    @rule(current=st.floats(-150, 150), seconds=st.floats(0, 3600))
    def whole_session(self, current: float, seconds: float) -> None:
        """A charger's sequence; faults or a running transaction may still refuse parts of it."""
        self.meter.set_load(0.0, 400.0)
        self._call("post_gw", dict(GW))
        self._call("post_receipt", {"TX": "B"})
        self.meter.set_load(current)
        self.time.advance(seconds)
        self.meter.set_load(0.0)
        self._call("post_receipt", {"TX": "E"})

    @precondition(lambda self: self.meter.powered)
    @rule(name=st.sampled_from(FAULT_NAMES))
    def raise_fault(self, name: str) -> None:
        self.meter.raise_fault(name)

    @rule(name=st.sampled_from(FAULT_NAMES))
    def clear_fault(self, name: str) -> None:
        self.meter.clear_fault(name)

    @rule()
    def power_cycle(self) -> None:
        self.meter.power_off()
        self.meter.power_on()

    @precondition(lambda self: self.meter.powered)
    @rule()
    def read(self) -> None:
        self.meter.get_metervalue()

    @invariant()
    def registers_never_decrease(self) -> None:
        if not self.meter.powered:
            return
        rd = self.meter.get_metervalue()["RD"]
        now = (rd[0]["RV"], rd[1]["RV"])
        assert now[0] >= self.shown[0] and now[1] >= self.shown[1]
        self.shown = now
        assert self.meter.import_mwh >= self.signed_max

    @invariant()
    def pagination_is_strictly_plus_one_and_every_record_verifies(self) -> None:
        records = self.meter.records
        assert [record.pagination for record in records] == list(range(1, len(records) + 1))
        assert self.meter.next_pagination == len(records) + 1
        for record in records[self.seen_records :]:
            parsed = OCMF.from_string(record.ocmf, strict=True)
            assert parsed.verify_signature(self.public_key) is True
            payload = json.loads(record.ocmf.split("|")[1])
            assert payload["PG"] == f"T{record.pagination}"
            begin, end = payload["RD"]
            assert end["RV"] >= begin["RV"]
            assert end["TX"] == record.reason
            if record.reason == "E" and end["ST"] == "G" and "E" not in end["EF"] and "U" not in end["TM"][-1]:
                assert parsed.check_eichrecht(errors_only=True) == []
            self.signed_max = max(self.signed_max, parse_kwh(end["RV"]))
        if len(records) > self.seen_records:
            event("signed records")
        self.seen_records = len(records)
        assert self.memory.records == records
        if records:
            assert self.meter.last_transaction == records[-1].ocmf

    @invariant()
    def at_most_one_transaction_and_xs_agrees(self) -> None:
        if self.meter.powered:
            xs = int(self.meter.get_metervalue()["XS"], 16)
            assert bool(xs & 1) == (self.meter.transaction is not None)


MeterMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)
TestMeterMachine = MeterMachine.TestCase
