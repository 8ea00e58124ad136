"""The per-meter conformance monitor: hears every journal entry and meter event, runs the checks as they come.

Findings are written onto the journal entry that showed them (so the journal route shows them) and kept here
too, so they survive the journal's ring buffer and ``DELETE journal``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from iemdcr_twin.simulator.conformance.checks import PROTOCOL_CHECKS, Check
from iemdcr_twin.simulator.conformance.input_checks import INPUT_CHECKS
from iemdcr_twin.simulator.conformance.situation import Situation, is_meter_request
from iemdcr_twin.simulator.conformance.verdicts import CheckState, Finding, snapshot
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import JournalEntry, PollRun

log = logging.getLogger("iemdcr.conformance")
NOTES_KEY = "conformance"
MAX_FINDINGS = 5000


class ConformanceMonitor:
    """Checks one meter's traffic as it happens."""

    def __init__(self, host: MeterHost) -> None:
        self.host = host
        self.situation = Situation(powered=host.meter.powered, jumps=host.clock.jumps)
        self.checks: list[Check] = [cls(self._flag) for cls in PROTOCOL_CHECKS + INPUT_CHECKS]
        self._poll_checks = [check for check in self.checks if check.judges_polls]  # the 1 Hz fast path
        self.findings: list[Finding] = []
        self.findings_dropped = 0
        self.counts: Counter[str] = Counter()
        self.attached_after_seq = host.journal.last_seq
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.requests = 0
        self.power_events = 0
        host.journal.listeners.append(self)
        host.clock.before_jump.append(host.journal.flush)  # requests before a jump are judged before it
        host.meter.listeners.append(self.on_meter_event)

    # ---- listeners: never let a checker bug break the meter ----------------------------------------------

    def on_entry(self, entry: JournalEntry) -> None:
        try:
            self._on_entry(entry)
        except Exception:
            log.exception("conformance check failed on journal entry %s", entry.seq)

    def on_polls(self, run: PollRun) -> None:
        try:
            self._on_polls(run)
        except Exception:
            log.exception("conformance check failed on polls %s..%s", run.first_seq, run.last_seq)

    def on_meter_event(self, kind: str, data: dict[str, Any]) -> None:
        self.host.journal.flush()  # the requests before this event are judged before it
        try:
            self._on_meter_event(kind, data)
        except Exception:
            log.exception("conformance monitor failed on meter event %s", kind)

    def _on_entry(self, entry: JournalEntry) -> None:
        if not is_meter_request(entry):
            return
        if self.first_seq is None:
            self.first_seq = entry.seq
        self.last_seq = entry.seq
        self.requests += 1
        s = self.situation
        s.jumps = self.host.clock.jumps
        for check in self.checks:
            check.on_entry(s, entry)
        s.apply(entry)

    def _on_polls(self, run: PollRun) -> None:
        """The 1 Hz fast path: successful polls change no situation, and only the checks that judge them hear."""
        if self.first_seq is None:
            self.first_seq = run.first_seq
        self.last_seq = run.last_seq
        self.requests += len(run)
        s = self.situation
        s.jumps = self.host.clock.jumps
        for check in self._poll_checks:
            check.on_polls(s, run)

    def _on_meter_event(self, kind: str, data: dict[str, Any]) -> None:
        s = self.situation
        if kind == "transaction_begin":
            s.tx_open = True
        elif kind == "transaction_end":
            s.tx_open = False
        elif kind == "power" and bool(data.get("on")) != s.powered:
            self.power_events += 1
            now = self.host.clock.now()
            for check in self.checks:
                check.on_power(s, bool(data.get("on")), now)
            s.power(bool(data.get("on")))

    # ---- findings ----------------------------------------------------------------------------------------

    def _flag(self, state: CheckState, code: str, message: str, entry: JournalEntry | None, sim_time: float) -> None:
        finding = Finding(state.id, code, state.severity, message, sim_time, None if entry is None else snapshot(entry))
        state.add(finding)
        self.counts[code] += 1
        if entry is not None:
            self.host.journal.add_finding(entry, code)
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)
        else:
            self.findings_dropped += 1

    def finish(self) -> None:
        """Judge pending situations (an E whose record was never fetched) at the current simulated time."""
        now = self.host.clock.now()
        for check in self.checks:
            check.finish(self.situation, now)


def attach(host: MeterHost) -> ConformanceMonitor:
    """The host's monitor, created on first use (idempotent)."""
    monitor = host.notes.get(NOTES_KEY)
    if not isinstance(monitor, ConformanceMonitor):
        monitor = ConformanceMonitor(host)
        host.notes[NOTES_KEY] = monitor
    return monitor


def monitor_of(host: MeterHost) -> ConformanceMonitor | None:
    monitor = host.notes.get(NOTES_KEY)
    return monitor if isinstance(monitor, ConformanceMonitor) else None
