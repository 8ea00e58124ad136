"""The protocol checks (FAIL when broken): each judges requests against the situation before them.

Rules come from meter-api.md and scenarios.md §4. Times are simulated seconds (``JournalEntry.sim_time``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, ClassVar

from iemdcr_twin.simulator.conformance.situation import Situation, is_get, is_meter_request, is_post, ok, tx_of
from iemdcr_twin.simulator.conformance.verdicts import CheckState, Finding, Verdict, snapshot
from iemdcr_twin.simulator.journal import JournalEntry, PollRun

Flag = Callable[[CheckState, Finding, "JournalEntry | None"], None]

RECEIPT_GRACE_S = 10.0  # an unfetched receipt is judged at the next B, or this long after E
POLL_GAP_S = 5.0
POLL_WINDOW_S = 2.0
POLL_WINDOW_MAX = 10  # more than this many polls within POLL_WINDOW_S: faster than 5 Hz, sustained
REINIT_MAX_REQUESTS = 10  # requests after power-up without POST gw before it counts as never re-initialised
STORM_WINDOW_S = 10.0
STORM_MAX = 6
STORM_KEYS = 1000


class Check:
    """One rule. Subclasses override the hooks they need."""

    id: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[Verdict] = Verdict.FAIL  # a finding's verdict unless ``found`` says otherwise
    judges_polls: ClassVar[bool] = False  # does a successful GET metervalue matter to this check?

    def __init__(self, flag: Flag) -> None:
        self.state = CheckState(self.id, self.title, self.severity)
        self._flag = flag

    def found(
        self,
        code: str,
        message: str,
        entry: JournalEntry | None,
        sim_time: float | None = None,
        *,
        verdict: Verdict | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Report a finding on ``entry`` (or at ``sim_time`` when no request shows it)."""
        at = sim_time if sim_time is not None else (entry.sim_time if entry is not None else 0.0)
        evidence = None if entry is None else snapshot(entry)
        finding = Finding(self.id, code, verdict or self.severity, message, at, evidence, detail)
        self._flag(self.state, finding, entry)

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        """Judge a request (``s`` is the situation before it)."""

    def on_polls(self, s: Situation, run: PollRun) -> None:
        """Judge a run of successful polls (only checks that judge polls hear them)."""
        for entry in run.entries():
            self.on_entry(s, entry)

    def on_power(self, s: Situation, on: bool, sim_time: float) -> None:
        """The meter was switched off or on (``s`` is the situation before the event)."""

    def on_jump(self, s: Situation, sim_time: float) -> None:
        """The clock is about to jump forward from ``sim_time`` (``advance`` or auto-jump)."""

    def finish(self, s: Situation, now: float) -> None:
        """Judge what is still pending at the end of a report's window (``now``, simulated time)."""


class GwOnce(Check):
    """POST gw once per power cycle; a refused one inside a re-initialisation is a WARN, not a FAIL.

    A re-initialisation is the driver reading gw before writing it: a POST gw is inside one when the driver's
    previous request other than a poll (GET metervalue) was a GET gw answered 200. That is EVerest's init
    after a driver restart (trace 7-restart): GET gw, POST gw refused 428 gw_already_set, POST datetime.
    """

    id = "gw_once_per_power_cycle"
    title = "POST gw is written once per power cycle (a refused one inside a re-initialisation: WARN)"

    def __init__(self, flag: Flag) -> None:
        super().__init__(flag)
        self._first: int | None = None  # the seq of this power cycle's successful POST gw
        self._read_gw: int | None = None  # the seq of a GET gw 200 with no request but polls since

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if is_post(entry, "gw"):
            self._judge(s, entry)
        if is_get(entry, "gw") and ok(entry):
            self._read_gw = entry.seq
        elif not is_get(entry, "metervalue"):
            self._read_gw = None

    def _judge(self, s: Situation, entry: JournalEntry) -> None:
        written = "earlier in this power cycle" if self._first is None else f"at seq {self._first}"
        if not s.gw_written:
            if ok(entry):
                self.state.exercised += 1
                self._first = entry.seq
        elif self._read_gw is not None:
            self.state.exercised += 1
            self.found(
                "gw_refused_on_reinit",
                f"POST gw in a re-initialisation (GET gw at seq {self._read_gw} first) without a meter power cycle "
                f"(a driver restart): gw stays as written {written}, and its CT and CI go on into the records",
                entry,
                verdict=Verdict.WARN,
            )
        else:
            self.found("gw_repeated", f"POST gw again in the same power cycle (written {written})", entry)

    def on_power(self, s: Situation, on: bool, sim_time: float) -> None:
        self._first = self._read_gw = None


class _BeforeB(Check):
    """Something that must have happened in this power cycle before every TX B."""

    code: ClassVar[str]
    missing: ClassVar[str]

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if tx_of(entry) != "B":
            return
        self.state.exercised += 1
        if not self.satisfied(s):
            self.found(self.code, f"TX B without {self.missing} since power-up", entry)

    def satisfied(self, s: Situation) -> bool:
        raise NotImplementedError


class GwBeforeB(_BeforeB):
    id = "gw_before_transaction"
    title = "POST gw before the first transaction of a power cycle"
    code = "b_before_gw"
    missing = "a successful POST gw"

    def satisfied(self, s: Situation) -> bool:
        return s.gw_written


class TimeBeforeB(_BeforeB):
    id = "time_set_before_begin"
    title = "Meter time set (POST gw or POST datetime) before TX B"
    code = "b_without_time"
    missing = "the time set (POST gw or POST datetime)"

    def satisfied(self, s: Situation) -> bool:
        return s.time_set


class UserBeforeB(_BeforeB):
    id = "user_before_begin"
    title = "User block (POST user) before TX B"
    code = "b_without_user"
    missing = "a successful POST user"

    def satisfied(self, s: Situation) -> bool:
        return s.user_set


class EBeforeB(Check):
    """A B while a transaction may be open (first contact, or after a B that may have opened one) needs an E first."""

    id = "end_before_begin"
    title = "TX E sent before TX B when a transaction may be open"

    def __init__(self, flag: Flag) -> None:
        super().__init__(flag)
        self._may_be_open = True  # the driver cannot know what it finds at first contact
        self._e_sent = False
        self._covered = False  # an E went out while a transaction may have been open

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        tx = tx_of(entry)
        if tx == "E":
            self._e_sent = True
            self._covered = self._covered or self._may_be_open
            if ok(entry) or entry.error == "no_transaction":
                self._may_be_open = False
        elif tx == "B":
            if self._may_be_open or self._covered:
                self.state.exercised += 1
                if not self._e_sent:
                    self.found("b_without_e", "TX B while a transaction may be open, without a TX E before it", entry)
            if _may_have_opened(entry):
                self._may_be_open, self._e_sent, self._covered = True, False, False


def _may_have_opened(begin: JournalEntry) -> bool:
    """A B opened a transaction, found one open, or its outcome is unknown (5xx, broken answer)."""
    if ok(begin) or begin.error == "transaction_running":
        return True
    return not 400 <= begin.status < 500


class NoDatetimeInTransaction(Check):
    id = "no_datetime_during_transaction"
    title = "No POST datetime while a transaction runs"

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if tx_of(entry) == "B" and ok(entry):
            self.state.exercised += 1
        elif is_post(entry, "datetime") and (s.tx_open or entry.error == "transaction_running"):
            self.found("datetime_in_transaction", "POST datetime while a transaction runs", entry)


class ReceiptAfterEnd(Check):
    id = "receipt_after_end"
    title = "Signed record fetched (GET receipt or transaction) after every successful TX E"

    def __init__(self, flag: Flag) -> None:
        super().__init__(flag)
        self._pending: JournalEntry | None = None

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        tx = tx_of(entry)
        if tx == "E" and ok(entry):
            self.state.exercised += 1
            self._pending = entry
        elif (is_get(entry, "receipt") or is_get(entry, "transaction")) and ok(entry):
            self._pending = None
        elif tx == "B" and self._pending is not None:
            since = self._pending.seq
            self._unfetched(f"no record fetched between TX E (seq {since}) and the next TX B (seq {entry.seq})")

    def on_power(self, s: Situation, on: bool, sim_time: float) -> None:
        self._judge_late(sim_time, "and the meter then lost power")
        self._pending = None  # a fresh grace period would be unfair after a power cut

    def finish(self, s: Situation, now: float) -> None:
        self._judge_late(now, "by the time of the report")

    def _judge_late(self, now: float, when: str) -> None:
        if self._pending is not None and now - self._pending.sim_time > RECEIPT_GRACE_S:
            since = self._pending.seq
            self._unfetched(f"no record fetched within {RECEIPT_GRACE_S:g} s after TX E (seq {since}) {when}")

    def _unfetched(self, message: str) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.found("receipt_not_fetched", message, pending)


class PollingRate(Check):
    """GET metervalue near 1 Hz; intervals with a clock jump, a power event or a 5xx answer are not judged.

    The interval after the last poll runs to the end of the report's window (``finish``) and is judged the
    same way, so a driver that stops polling while the meter is powered fails.
    """

    id = "polling_rate"
    title = "GET metervalue near 1 Hz: not faster than 5 Hz sustained, no gap over 5 s while powered"
    judges_polls = True

    def __init__(self, flag: Flag) -> None:
        super().__init__(flag)
        self._last_seq = 0  # the previous poll (0: none yet)
        self._last_time = 0.0
        self._last_key: tuple[int, int] = (-1, -1)
        self._disturbed = False
        self._window: deque[float] = deque(maxlen=POLL_WINDOW_MAX + 1)  # the last few poll times are enough
        self._storming = False  # one finding per storm, not one per request in it
        self._break_at: float | None = None  # the first jump or power event since the last poll
        self._last_run: PollRun | None = None  # where the last poll's entry is, for a trailing-gap finding
        self._trailing_flagged = 0  # the last poll whose trailing gap a report already found

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if not is_get(entry, "metervalue"):
            if entry.status >= 500:
                self._disturbed = True
            return
        self._last_run = None
        self._report(self._poll(s, entry.seq, entry.sim_time), entry)
        self._disturbed = entry.status >= 500

    def on_polls(self, s: Situation, run: PollRun) -> None:
        first = run.first_seq
        for k, t in enumerate(run.sim_times):
            found = self._poll(s, first + k, t)
            if found:
                self._report(found, run.entry(k))
            self._disturbed = False
        self._last_run = run

    def on_power(self, s: Situation, on: bool, sim_time: float) -> None:
        self._note_break(sim_time)

    def on_jump(self, s: Situation, sim_time: float) -> None:
        self._note_break(sim_time)

    def _note_break(self, sim_time: float) -> None:
        if self._break_at is None:
            self._break_at = sim_time

    def _poll(self, s: Situation, seq: int, t: float) -> list[tuple[str, str]] | None:
        """Take one poll at simulated time ``t``; returns what it shows as (code, message), usually nothing."""
        found = None
        key = (s.jumps, s.power_epoch)
        if self._last_seq and key == self._last_key:
            if not self._disturbed:
                self.state.exercised += 1
                gap = t - self._last_time
                if gap > POLL_GAP_S and self._trailing_flagged != self._last_seq:
                    found = [("poll_gap", f"{gap:.1f} s since the previous poll (seq {self._last_seq})")]
        else:
            self._window.clear()
            self._last_key = key
        window = self._window
        window.append(t)
        storming = len(window) > POLL_WINDOW_MAX and t - window[0] <= POLL_WINDOW_S
        if storming and not self._storming:
            too_fast = f"more than {POLL_WINDOW_MAX} polls within {POLL_WINDOW_S:g} s (over 5 Hz)"
            found = [*(found or []), ("poll_too_fast", too_fast)]
        self._storming = storming
        self._last_seq, self._last_time = seq, t
        self._break_at = None
        return found

    def _report(self, found: list[tuple[str, str]] | None, entry: JournalEntry) -> None:
        if found:
            for code, message in found:
                self.found(code, message, entry)

    def finish(self, s: Situation, now: float) -> None:
        """The gap from the last poll to the window's end ``now``, judged like any interval between polls."""
        if not self._last_seq or self._disturbed or self._trailing_flagged == self._last_seq:
            return
        if self._break_at is not None and self._break_at < now:
            return  # a jump or a power event in the interval (a powered-off meter had one after the last poll)
        gap = now - self._last_time
        if gap <= POLL_GAP_S:
            return
        self.state.exercised += 1
        self._trailing_flagged = self._last_seq
        entry = None
        if self._last_run is not None:
            try:
                entry = self._last_run.entry(len(self._last_run) - 1)
            except KeyError:  # the journal's ring has dropped it; the finding keeps its time
                entry = None
        message = f"no poll for {gap:.1f} s after the last one (seq {self._last_seq}) up to the end of the window"
        self.found("poll_gap", message, entry, now)


class ReinitAfterPowerCycle(Check):
    id = "reinit_after_power_cycle"
    title = "Re-initialisation (POST gw) after a meter power cycle, before using the meter"
    judges_polls = True

    def __init__(self, flag: Flag) -> None:
        super().__init__(flag)
        self._since: float | None = None  # power-up time while re-initialisation is awaited
        self._requests = 0

    def on_power(self, s: Situation, on: bool, sim_time: float) -> None:
        self._since = sim_time if on else None
        self._requests = 0

    def on_polls(self, s: Situation, run: PollRun) -> None:
        if self._since is not None:  # only while re-initialisation is awaited
            super().on_polls(s, run)

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if self._since is None or not is_meter_request(entry):
            return
        self._requests += 1
        if is_post(entry, "gw") and ok(entry):
            self.state.exercised += 1
            self._since = None
        elif tx_of(entry) == "B" or is_post(entry, "user") or is_post(entry, "tariff"):
            self._not_reinitialised(entry, f"{entry.method} {entry.node} before POST gw")
        elif self._requests > REINIT_MAX_REQUESTS:
            self._not_reinitialised(entry, f"{self._requests} requests without POST gw")

    def _not_reinitialised(self, entry: JournalEntry, what: str) -> None:
        self.state.exercised += 1
        self.found("no_reinit", f"after the meter powered up at sim time {self._since:.3f}: {what}", entry)
        self._since = None


class NoRetryStorm(Check):
    """Identical failing requests, counted per (method, path, body) in a sliding window.

    A 425 ``signature_pending`` to GET receipt after a TX E answered 200 is the meter saying "not yet" while
    it signs, not a failure: it is not counted (trace 8-sigdelay, driver.md fix 14).
    """

    id = "no_retry_storm"
    title = "No retry storms (more than 6 identical failing requests within 10 s)"

    def __init__(self, flag: Flag) -> None:
        super().__init__(flag)
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._ended = False  # a TX E answered 200 in this power cycle: the meter may be signing

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if ok(entry):
            self._ended = self._ended or tx_of(entry) == "E"
            return
        if self._ended and entry.status == 425 and entry.error == "signature_pending" and is_get(entry, "receipt"):
            return
        self.state.exercised += 1
        key = f"{entry.method} {entry.path} {entry.body!r}"
        times = self._recent.pop(key, None) or deque()
        self._recent[key] = times  # most recently failing last
        while len(self._recent) > STORM_KEYS:
            self._recent.popitem(last=False)
        times.append(entry.sim_time)
        while entry.sim_time - times[0] > STORM_WINDOW_S:
            times.popleft()
        if len(times) > STORM_MAX:
            self.found(
                "retry_storm",
                f"{len(times)} identical failing {entry.method} {entry.node} within {STORM_WINDOW_S:g} s",
                entry,
            )

    def on_power(self, s: Situation, on: bool, sim_time: float) -> None:
        self._ended = False


PROTOCOL_CHECKS: list[type[Check]] = [
    GwOnce,
    GwBeforeB,
    TimeBeforeB,
    UserBeforeB,
    EBeforeB,
    NoDatetimeInTransaction,
    ReceiptAfterEnd,
    PollingRate,
    ReinitAfterPowerCycle,
    NoRetryStorm,
]
