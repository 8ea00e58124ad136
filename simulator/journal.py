"""The request journal: every meter-API request a meter saw, in a bounded ring buffer.

Scenarios, conformance checks and the dashboard all read it. Entries get a monotonic ``seq`` so readers can
page with ``since``; listeners hear every entry once, in order (events, metrics, conformance).

The ring is stored by column (arrays of floats and status codes, lists of shared strings) rather than as one
object per request: a poll then leaves nothing new behind on the heap, which is what keeps a 10,000-entry
journal cheap on the request path and about 60 bytes per entry in memory. ``JournalEntry`` objects are made
when someone reads.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class Route(NamedTuple):
    """What is known about a request before it runs: shared by every entry of that method and path."""

    method: str
    path: str
    node: str  # the last path segment (gw, receipt...), which is what rules talk about
    poll: bool  # GET metervalue: the driver's 1 Hz poll, most of all traffic


# Listeners hear new entries this long (real time) after the first of them: one timer per batch instead of a
# callback per event-loop pass keeps a polling storm's request path short (bench: +2-4 % throughput). Anyone
# who reads what the listeners made flushes first, and so does the clock before it jumps.
FLUSH_DELAY_S = 0.005
_ROUTES: dict[tuple[str, str], Route] = {}
_ROUTES_MAX = 256  # the meter API's own paths and methods; odd paths from clients are not kept


def route_of(method: str, path: str) -> Route:
    """The shared ``Route`` of a method and path (a fleet keeps millions of entries: share the strings)."""
    route = _ROUTES.get((method, path))
    if route is not None:
        return route
    node = path.rstrip("/").rsplit("/", 1)[-1]
    route = Route(method, path, node, method == "GET" and path.startswith("/counter/") and node == "metervalue")
    if path.startswith("/counter/") and len(_ROUTES) < _ROUTES_MAX:
        _ROUTES[(method, path)] = route
    return route


@dataclass(slots=True)
class JournalEntry:
    """One request as readers see it (made from the journal's columns when read)."""

    seq: int
    sim_time: float
    wall_time: float
    method: str
    path: str
    body: Any
    status: int
    error: str | None
    latency_ms: float
    node: str
    findings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "sim_time": self.sim_time,
            "wall_time": self.wall_time,
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "status": self.status,
            "error": self.error,
            "latency_ms": self.latency_ms,
            "findings": list(self.findings),
        }


class PollRun:
    """Consecutive successful polls (GET metervalue, 200, no error), heard together.

    Listeners judge a run from its times without an entry object per poll; ``entry(k)`` makes the one a
    finding needs.
    """

    __slots__ = ("first_seq", "journal", "latencies_ms", "sim_times")

    def __init__(self, journal: Journal, first_seq: int, sim_times: Sequence[float], latencies_ms: Sequence[float]):
        self.journal = journal
        self.first_seq = first_seq
        self.sim_times = sim_times
        self.latencies_ms = latencies_ms

    def __len__(self) -> int:
        return len(self.sim_times)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.sim_times) - 1

    def entry(self, k: int) -> JournalEntry:
        return self.journal.entry(self.first_seq + k)

    def entries(self) -> list[JournalEntry]:
        return [self.entry(k) for k in range(len(self.sim_times))]


class JournalListener(Protocol):
    def on_entry(self, entry: JournalEntry) -> None:
        """Hear a request that is not a successful poll."""

    def on_polls(self, run: PollRun) -> None:
        """Hear a run of successful polls."""


class EveryEntry:
    """A listener that wants each request as an entry, polls included (simple, for rare consumers)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[JournalEntry], None]) -> None:
        self.callback = callback

    def on_entry(self, entry: JournalEntry) -> None:
        self.callback(entry)

    def on_polls(self, run: PollRun) -> None:
        for entry in run.entries():
            self.callback(entry)


class Journal:
    """A ring buffer of the last ``size`` requests of one meter."""

    def __init__(self, size: int = 10_000) -> None:
        if size < 1:
            raise ValueError("journal size must be at least 1")
        self.size = size
        self.listeners: list[JournalListener] = []
        self._next_seq = 1
        self._first_seq = 1  # the oldest seq not cleared (the ring may have dropped older ones still)
        self._heard = 0  # the listeners have heard every seq up to this one
        self._flush_scheduled = False
        self._full = False
        # the columns, one slot per entry at (seq - 1) % size
        self._routes: list[Route] = []
        self._bodies: list[Any] = []
        self._errors: list[str | None] = []
        self._status = array("H")
        self._sim = array("d")
        self._wall = array("d")
        self._latency = array("d")
        self._findings: dict[int, list[str]] = {}  # few entries have findings

    def record(
        self,
        route: Route,
        sim_time: float,
        wall_time: float,
        body: Any,
        status: int,
        error: str | None,
        latency_ms: float,
    ) -> int:
        """Add a request; returns its seq. The meter API's hot path: positional, no object per entry."""
        seq = self._next_seq
        size = self.size
        if seq - self._heard > size and self.listeners:  # it would drop an entry nobody heard yet
            self.flush()
        if self._full:
            i = (seq - 1) % size
            self._routes[i] = route
            self._bodies[i] = body
            self._errors[i] = error
            self._status[i] = status
            self._sim[i] = sim_time
            self._wall[i] = wall_time
            self._latency[i] = latency_ms
            if self._findings:
                self._findings.pop(seq - size, None)
        else:
            self._routes.append(route)
            self._bodies.append(body)
            self._errors.append(error)
            self._status.append(status)
            self._sim.append(sim_time)
            self._wall.append(wall_time)
            self._latency.append(latency_ms)
            self._full = len(self._routes) == size
        self._next_seq = seq + 1
        if not self.listeners:
            self._heard = seq
        elif not self._flush_scheduled:
            self._schedule_flush()
        return seq

    def add(
        self,
        sim_time: float,
        wall_time: float,
        method: str,
        path: str,
        body: Any,
        status: int,
        error: str | None,
        latency_ms: float,
    ) -> JournalEntry:
        """Add a request by method and path; returns it as an entry (for callers off the hot path)."""
        seq = self.record(route_of(method, path), sim_time, wall_time, body, status, error, latency_ms)
        return self.entry(seq)

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: a synchronous caller hears at once
            self.flush()
            return
        loop.call_later(FLUSH_DELAY_S, self.flush)
        self._flush_scheduled = True

    def flush(self) -> None:
        """Let the listeners hear every entry added since the last flush, in order.

        Listeners hear entries in batches (``FLUSH_DELAY_S`` after the first) rather than one call per
        request, and a run of successful polls as one ``PollRun``: under a polling storm that keeps the
        request path short. Anyone who reads what the listeners made (the journal itself, conformance
        reports, metrics, meter events) flushes first.
        """
        self._flush_scheduled = False
        while self._heard < self._next_seq - 1:
            seq, last = self._heard + 1, self._next_seq - 1
            self._heard = last  # set first: a listener that reads the journal must not hear these twice
            listeners = tuple(self.listeners)
            while seq <= last:
                end = self._poll_run_end(seq, last)
                if end > seq:
                    run = PollRun(self, seq, self._column(self._sim, seq, end), self._column(self._latency, seq, end))
                    for listener in listeners:
                        listener.on_polls(run)
                    seq = end
                else:
                    entry = self.entry(seq)
                    for listener in listeners:
                        listener.on_entry(entry)
                    seq += 1

    def _poll_run_end(self, seq: int, last: int) -> int:
        """One past the last seq of the run of successful polls starting at ``seq`` (``seq`` if none)."""
        size, routes, status, errors = self.size, self._routes, self._status, self._errors
        while seq <= last:
            i = (seq - 1) % size
            if not (routes[i].poll and status[i] == 200 and errors[i] is None):
                break
            seq += 1
        return seq

    def _column(self, column: array[float], seq: int, end: int) -> array[float]:
        """The values of seqs ``seq`` to ``end - 1`` from one float column, across the ring's wrap."""
        start, stop = (seq - 1) % self.size, (end - 1) % self.size
        if start < stop:
            return column[start:stop]
        return column[start:] + column[:stop]

    def _oldest(self) -> int:
        return max(self._first_seq, self._next_seq - self.size)

    def entry(self, seq: int) -> JournalEntry:
        """The entry with this seq (it must still be in the ring)."""
        if not self._oldest() <= seq < self._next_seq:
            raise KeyError(f"journal entry {seq} is not in the journal")
        i = (seq - 1) % self.size
        route = self._routes[i]
        found = self._findings.get(seq)
        return JournalEntry(
            seq,
            self._sim[i],
            self._wall[i],
            route.method,
            route.path,
            self._bodies[i],
            self._status[i],
            self._errors[i],
            self._latency[i],
            route.node,
            list(found) if found else [],
        )

    def add_finding(self, entry: JournalEntry, code: str) -> None:
        """Note a conformance finding on an entry (once per code); it stays while the entry is in the ring."""
        if code in entry.findings:
            return
        entry.findings.append(code)
        if self._oldest() <= entry.seq < self._next_seq:
            self._findings.setdefault(entry.seq, []).append(code)

    def entries(self, since: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """Entries with ``seq > since``, oldest first, at most ``limit``."""
        self.flush()
        first = max(self._oldest(), since + 1)
        last = self._next_seq if limit is None else min(self._next_seq, first + max(limit, 0))
        return [self.entry(seq) for seq in range(first, last)]

    def clear(self) -> None:
        self.flush()
        self._first_seq = self._next_seq
        self._findings.clear()

    def __len__(self) -> int:
        return self._next_seq - self._oldest()

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1
