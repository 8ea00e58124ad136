"""Hypothesis drives the meter model through random sessions and checks its invariants after every step.

Registers never decrease (until a factory reset starts a new meter), PG goes +1 per record and is never
reused, at most one transaction runs, every record verifies with pyocmf, and a refused operation changes
nothing. ``HYPOTHESIS_PROFILE=long`` runs many more steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from pyocmf import OCMF

from iemdcr_twin.simulator.model import RamMemory, Refusal
from iemdcr_twin.simulator.model.faults import BY_NAME
from tests.simulator.helpers import GW, USER, FakeTime, make_meter

settings.register_profile(
    "ci", max_examples=50, stateful_step_count=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, stateful_step_count=100, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="|"), min_size=0, max_size=70)
TM = st.sampled_from(
    [
        "2025-06-06T09:26:24,000+0100",
        "2031-01-01T00:00:00,500-0330",
        "2025-6-6T09:26:24",
        "",
        "2025-06-06T25:00:00,000+0000",
    ]
)
CURRENTS = st.sampled_from([0.0, 0.2, 0.9, 1.5, 16.0, 125.0, 400.0, -0.5, -32.0])
VOLTAGES = st.sampled_from([0.0, 200.0, 400.0, 920.0])
FAULTS = st.sampled_from(sorted(BY_NAME))
SWITCHES = st.sampled_from(
    [
        {"activation_threshold_A": 1.0},
        {"activation_threshold_A": 0.1},
        {"require_gw_for_transaction": False},
        {"require_gw_for_transaction": True},
        {"time_status_after_set": "S"},
        {"time_status_after_set": "I"},
        {"v1_transaction": False},
        {"bogus": 1},
    ]
)
VALID_CT = {"EVSEID", "CBIDC"}
CHECKED = {"records": 0, "eichrecht": 0}


class MeterMachine(RuleBasedStateMachine):
    """One meter in RAM with a hand-driven clock."""

    @initialize()
    def start(self) -> None:
        self.time = FakeTime()
        self.memory = RamMemory()
        self.meter = make_meter(self.time, self.memory)
        self.seen_records = 0
        self.used: set[tuple[str, int]] = set()
        self.floor = (0, 0)

    # ---- helpers ---------------------------------------------------------------------------------------

    def attempt(self, operation: Any, *args: Any) -> None:
        """Run a meter-API operation; a Refusal must leave the meter exactly as it was."""
        before = self.meter.snapshot()
        try:
            operation(*args)
        except Refusal:
            assert self.meter.snapshot() == before

    # ---- rules: meter API ------------------------------------------------------------------------------

    @rule()
    def init_like_a_charger(self) -> None:
        self.attempt(self.meter.post_gw, dict(GW))
        self.attempt(self.meter.post_tariff, {"TT": "0.49 EUR/kWh"})
        self.attempt(self.meter.post_user, dict(USER))

    @rule(current=CURRENTS, seconds=st.sampled_from([1.0, 60.0, 3600.0]))
    def charging_session(self, current: float, seconds: float) -> None:
        """B, charge, current down, E: what a charger does, each step refused or not by the rules."""
        self.meter.set_load(0.0)
        self.attempt(self.meter.post_receipt, {"TX": "B"})
        self.meter.set_load(current, 400.0)
        self.time.advance(seconds)
        self.meter.set_load(0.0)
        self.attempt(self.meter.post_receipt, {"TX": "E"})

    @rule(ct=st.one_of(st.just("EVSEID"), TEXT), ci=st.one_of(st.just("DE*ISA*E0001"), TEXT), tm=TM)
    def write_gw(self, ct: str, ci: str, tm: str) -> None:
        self.attempt(self.meter.post_gw, {"CT": ct, "CI": ci, "TM": tm})

    @rule(tm=TM)
    def write_time(self, tm: str) -> None:
        self.attempt(self.meter.post_datetime, {"TM": tm})

    @rule(valid=st.booleans(), identifier=TEXT)
    def write_user(self, valid: bool, identifier: str) -> None:
        body = dict(USER) if valid else {**USER, "ID": identifier, "IF": identifier}
        self.attempt(self.meter.post_user, body)

    @rule(tariff=st.one_of(st.just("0.49 EUR/kWh"), TEXT))
    def write_tariff(self, tariff: str) -> None:
        self.attempt(self.meter.post_tariff, {"TT": tariff})

    @rule(kind=st.sampled_from(["B", "E", "X", 1]))
    def receipt(self, kind: Any) -> None:
        running = self.meter.transaction is not None
        self.attempt(self.meter.post_receipt, {"TX": kind})
        if kind == "B" and running:
            assert self.meter.transaction is not None

    @rule()
    def read_everything(self) -> None:
        self.meter.get_metervalue()
        for read in (self.meter.get_receipt, self.meter.get_transaction):
            with contextlib.suppress(Refusal):
                read()

    # ---- rules: control plane --------------------------------------------------------------------------

    @rule(current=CURRENTS, voltage=VOLTAGES, ramp=st.sampled_from([0.0, 0.0, 5.0, 120.0]))
    def load(self, current: float, voltage: float, ramp: float) -> None:
        self.meter.set_load(current, voltage, ramp)

    @rule(seconds=st.sampled_from([0.001, 0.5, 1.0, 10.0, 600.0, 7200.0]))
    def advance(self, seconds: float) -> None:
        self.time.advance(seconds)

    @rule(name=FAULTS)
    def raise_fault(self, name: str) -> None:
        self.meter.raise_fault(name)

    @rule(name=FAULTS)
    def clear_fault(self, name: str) -> None:
        self.meter.clear_fault(name)

    @rule(off_s=st.sampled_from([0.0, 5.0]))
    def power_cycle(self, off_s: float) -> None:
        self.meter.power_off()
        self.time.advance(off_s)
        self.meter.power_on()

    @rule()
    def restart_process(self) -> None:
        """The process dies and a new meter loads the same non-volatile memory."""
        if self.meter.transaction is None:
            self.meter.checkpoint()
        self.meter = make_meter(self.time, self.memory)

    @rule(changes=SWITCHES)
    def switches(self, changes: dict[str, Any]) -> None:
        with contextlib.suppress(ValueError):
            self.meter.set_switches(changes)

    @rule()
    def factory_reset(self) -> None:
        self.meter.factory_reset()
        self.floor = (0, 0)
        self.seen_records = len(self.meter.records)

    # ---- invariants ------------------------------------------------------------------------------------

    @invariant()
    def registers_never_decrease(self) -> None:
        now = (self.meter.import_uj, self.meter.export_uj)
        assert now[0] >= self.floor[0] and now[1] >= self.floor[1]
        self.floor = now

    @invariant()
    def at_most_one_transaction(self) -> None:
        snapshot = self.meter.snapshot()
        assert (snapshot["transaction"] is None) == (self.meter.transaction is None)
        assert bool(self.meter.status_word() & 1) == (self.meter.transaction is not None)

    @invariant()
    def new_records_are_numbered_and_verify(self) -> None:
        records = self.meter.records
        for record in records[self.seen_records :]:
            key = (record.key_fingerprint, record.pagination)
            assert key not in self.used, f"PG {record.pagination} reused"
            own = [r for r in records if r.key_fingerprint == record.key_fingerprint and r is not record]
            if own:
                assert record.pagination == max(r.pagination for r in own) + 1
            self.used.add(key)
            self.check_record(record.ocmf)
        self.seen_records = len(records)
        assert self.meter.next_pagination == max(
            (r.pagination + 1 for r in records if r.key_fingerprint == self.meter.signer.fingerprint),
            default=self.meter.profile.first_pagination,
        )

    def check_record(self, text: str) -> None:
        # The twin stores free-text CT as given (meter-api.md §3.2); pyocmf's strict mode refuses CT values
        # other than the OCMF ones, so those records are parsed leniently (their signature must still verify).
        spec_ct = json.loads(text.split("|")[1]).get("CT") in VALID_CT
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = OCMF.from_string(text, strict=spec_ct)
        assert parsed.verify_signature(self.meter.signer.public_key_hex) is True
        CHECKED["records"] += 1
        if spec_valid_e_record(parsed):
            assert parsed.check_eichrecht(errors_only=True) == []
            CHECKED["eichrecht"] += 1


def spec_valid_e_record(parsed: OCMF) -> bool:
    """A healthy E record whose inputs (CT, user block, synchronised time) are what the spec asks for."""
    payload = parsed.payload
    readings = payload.RD
    return (
        readings[-1].TX.value == "E"
        and all(r.ST.value == "G" and not r.EF and r.TM.status.value != "U" for r in readings)
        and (payload.CT or "") in VALID_CT
        and USER["ID"] == payload.ID
        and payload.IS is True
    )


MeterMachine.TestCase.settings = settings.get_profile(PROFILE)
TestMeterStateMachine = MeterMachine.TestCase
