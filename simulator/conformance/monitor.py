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
from iemdcr_twin.simulator.conformance.meter_time import MeterTimeTrue, last_reading_tm, tm_epoch
from iemdcr_twin.simulator.conformance.situation import Situation, TrueTime, is_meter_request
from iemdcr_twin.simulator.conformance.verdicts import CheckState, Finding
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import JournalEntry, PollRun

log = logging.getLogger("iemdcr.conformance")
MAX_FINDINGS = 5000
ALL_CHECKS: list[type[Check]] = [*PROTOCOL_CHECKS, MeterTimeTrue, *INPUT_CHECKS]  # the report's order


class WindowError(ValueError):
    """A report window that cannot be judged: its end lies before the traffic judged, or in the future."""


class ConformanceMonitor:
    """Checks one meter's traffic as it happens.

    ``true_time`` says which clock the driver's TM writes are judged against (``meter_time_true``).
    """

    def __init__(self, host: MeterHost, true_time: TrueTime = TrueTime.WALL) -> None:
        self.host = host
        self.situation = Situation(powered=host.meter.powered, jumps=host.clock.jumps, true_time=true_time)
        self.checks: list[Check] = [cls(self._flag) for cls in ALL_CHECKS]
        self._poll_checks = [check for check in self.checks if check.judges_polls]  # the 1 Hz fast path
        self.findings: list[Finding] = []
        self.findings_dropped = 0
        self.counts: Counter[str] = Counter()
        self.attached_after_seq = host.journal.last_seq
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.last_time: float | None = None  # the simulated time of the last request heard
        self.requests = 0
        self.power_events = 0
        self._learn_last_record()
        host.journal.listeners.append(self)
        host.clock.before_jump.append(self.on_jump)  # requests before a jump are judged before it
        host.meter.listeners.append(self.on_meter_event)

    @property
    def true_time(self) -> TrueTime:
        return self.situation.true_time

    @true_time.setter
    def true_time(self, value: TrueTime) -> None:
        self.situation.true_time = TrueTime(value)

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

    def on_jump(self) -> None:
        """The clock is about to jump: judge the requests before it, then tell the checks where it broke."""
        self.host.journal.flush()
        try:
            now = self.host.clock.now()
            for check in self._poll_checks:
                check.on_jump(self.situation, now)
        except Exception:
            log.exception("conformance monitor failed on a clock jump")

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
        self.last_time = entry.sim_time
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
        self.last_time = run.sim_times[-1]
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
            self._learn_last_record()
        elif kind == "factory_reset":  # a new meter in the slot: the old one's records bind nothing
            s.last_signed, s.last_signed_tm = None, ""
        elif kind == "power" and bool(data.get("on")) != s.powered:
            self.power_events += 1
            now = self.host.clock.now()
            for check in self.checks:
                check.on_power(s, bool(data.get("on")), now)
            s.power(bool(data.get("on")))

    def _learn_last_record(self) -> None:
        """The meter's last signed reading: ``meter_time_true`` warns about writes that go back behind it."""
        tm = last_reading_tm(self.host.meter.registers.last_transaction)
        epoch = tm_epoch(tm)
        if tm is not None and epoch is not None:
            self.situation.last_signed, self.situation.last_signed_tm = epoch, tm

    # ---- findings ----------------------------------------------------------------------------------------

    def _flag(self, state: CheckState, finding: Finding, entry: JournalEntry | None) -> None:
        state.add(finding)
        self.counts[finding.code] += 1
        if entry is not None:
            self.host.journal.add_finding(entry, finding.code)
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)
        else:
            self.findings_dropped += 1

    def window_end(self, until: float | None = None) -> float:
        """The end of a report's window: ``until`` (simulated epoch seconds) or now; WindowError if impossible.

        The window cannot end before the last request the monitor judged (the lab says it stopped the
        driver at ``until``, so nothing came later) nor after the current simulated time.
        """
        now = self.host.clock.now()
        if until is None:
            return now
        if until > now:
            raise WindowError(f"until {until:.3f} is after the current simulated time {now:.3f}")
        if self.last_time is not None and until < self.last_time:
            raise WindowError(
                f"until {until:.3f} is before the last request judged (seq {self.last_seq} at simulated time "
                f"{self.last_time:.3f}); the window must hold every request the report covers"
            )
        return until

    def finish(self, until: float | None = None) -> float:
        """Judge what is pending (an unfetched record, the gap after the last poll) at the window's end.

        Returns the window's end (simulated time); raises WindowError for an impossible ``until``.
        """
        self.host.journal.flush()
        end = self.window_end(until)
        for check in self.checks:
            check.finish(self.situation, end)
        return end


def attach(host: MeterHost, true_time: TrueTime | None = None) -> ConformanceMonitor:
    """The host's monitor, created on first use (idempotent).

    ``true_time`` declares which clock the driver reads (default: its own, the wall clock); whoever knows
    (the scenario runner shares its clock, a replay has none) says so here, before the driver's traffic.
    """
    monitor = host.conformance
    if not isinstance(monitor, ConformanceMonitor):  # None until first use; only attach sets the field
        monitor = ConformanceMonitor(host, true_time or TrueTime.WALL)
        host.conformance = monitor
    elif true_time is not None:
        monitor.true_time = true_time
    return monitor


def monitor_of(host: MeterHost) -> ConformanceMonitor | None:
    """The host's monitor, if ``attach`` made one."""
    monitor = host.conformance
    return monitor if isinstance(monitor, ConformanceMonitor) else None
