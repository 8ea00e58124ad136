"""The request journal: every meter-API request a meter saw, in a bounded ring buffer.

Scenarios, conformance checks and the dashboard all read it. Entries get a monotonic ``seq`` so readers can
page with ``since``; listeners hear about each entry as it is added (events, metrics, conformance).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JournalListener = Callable[["JournalEntry"], None]
_SHARED: dict[str, tuple[str, str]] = {}  # (path, node) of known paths, shared by every entry and meter
_SHARED_MAX = 64  # only the meter API's own few paths get shared; odd paths from clients are not kept


def _path_and_node(path: str) -> tuple[str, str]:
    shared = _SHARED.get(path)
    if shared is not None:
        return shared
    pair = (path, path.rstrip("/").rsplit("/", 1)[-1])
    if path.startswith("/counter/") and len(_SHARED) < _SHARED_MAX:
        _SHARED[path] = pair
    return pair


@dataclass(slots=True)
class JournalEntry:
    seq: int
    sim_time: float
    wall_time: float
    method: str
    path: str
    body: Any
    status: int
    error: str | None
    latency_ms: float
    findings: list[str] = field(default_factory=list)
    node: str = field(init=False)  # the last path segment (gw, receipt...), which is what rules talk about

    def __post_init__(self) -> None:
        self.path, self.node = _path_and_node(self.path)  # a fleet keeps millions of entries: share strings

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


class Journal:
    """A ring buffer of the last ``size`` requests of one meter."""

    def __init__(self, size: int = 10_000) -> None:
        if size < 1:
            raise ValueError("journal size must be at least 1")
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._next_seq = 1
        self.listeners: list[JournalListener] = []
        self._pending: list[JournalEntry] = []  # added, not yet heard by the listeners

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
        entry = JournalEntry(self._next_seq, sim_time, wall_time, method, path, body, status, error, latency_ms)
        self._next_seq += 1
        self._entries.append(entry)
        if self.listeners:
            self._pending.append(entry)
            if len(self._pending) == 1:
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:  # no event loop: a synchronous caller hears at once
                    self.flush()
        return entry

    def flush(self) -> None:
        """Let the listeners hear every pending entry, in order.

        Listeners hear entries in one batch per event-loop pass rather than one call per request: under a
        polling storm that keeps the request path short (bench: +19 % throughput). Anyone who reads what the
        listeners made (the journal itself, conformance reports, metrics, meter events) flushes first.
        """
        while self._pending:
            pending, self._pending = self._pending, []
            listeners = tuple(self.listeners)
            for entry in pending:
                for listener in listeners:
                    listener(entry)

    def entries(self, since: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """Entries with ``seq > since``, oldest first, at most ``limit``."""
        self.flush()
        selected = [entry for entry in self._entries if entry.seq > since]
        return selected if limit is None else selected[:limit]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1
