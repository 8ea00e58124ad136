"""``python -m bench.metrics [METERS]``: what /metrics costs, in process (no HTTP).

- The journal listener (the request path): ns per poll for runs of 1, 10 and 100 polls and per single entry,
  for the control app's listener (``control/prometheus.py``: plain counters, one ``+= n`` per run) and, for
  comparison, the same counting done with prometheus_client's own ``Counter`` and ``Histogram`` (a lock per
  increment and per observation). Best of 7 rounds of 200,000 polls or entries.
- One scrape (``generate_latest`` of the control app's registry, conformance monitors attached as in
  ``serve``) of a twin of METERS meters (default 100) with 21 requests each: best of 5 rounds of 5 scrapes.

A figure for reading, not a target: docs/performance.md, "Metrics through prometheus_client".
"""

from __future__ import annotations

import sys
import timeit
from array import array
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.exposition import generate_latest

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control.keys import METRICS_KEY
from iemdcr_twin.simulator.control.prometheus import LATENCY_BUCKETS_S, Metrics
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from iemdcr_twin.simulator.journal import Journal, JournalEntry, PollRun

POLL = "/counter/v1/ocmf/metervalue"


class Listener(Protocol):
    def on_entry(self, entry: JournalEntry) -> None: ...

    def on_polls(self, run: PollRun) -> None: ...


class NativeListener:
    """The app's listener rewritten on prometheus_client's Counter and Histogram (the road not taken)."""

    def __init__(self, serial: str) -> None:
        registry = CollectorRegistry()
        self.requests = PromCounter(
            "iemdcr_requests", "Requests", ("meter", "node", "method", "status"), registry=registry
        )
        self.serial = serial
        self.polls = self.requests.labels(serial, "metervalue", "GET", "200")
        self.latency = PromHistogram(
            "iemdcr_request_duration_seconds", "Latency", ("meter",), registry=registry, buckets=LATENCY_BUCKETS_S
        ).labels(serial)

    def on_entry(self, entry: JournalEntry) -> None:
        self.requests.labels(self.serial, entry.node, entry.method, str(entry.status)).inc()
        self.latency.observe(entry.latency_ms / 1000)

    def on_polls(self, run: PollRun) -> None:
        self.polls.inc(len(run))
        observe = self.latency.observe
        for latency_ms in run.latencies_ms:
            observe(latency_ms / 1000)


def new_twin(meters: int) -> Twin:
    twin = Twin(SimClock("virtual", 0, 1_700_000_000), seed="bench", journal_size=100)
    for index in range(meters):
        twin.add_meter(MeterSpec(port=0), index)
    return twin


def time_listener(name: str, journal: Journal, listener: Listener) -> None:
    entry = JournalEntry(0, 0.0, 0.0, "POST", "/counter/v1/ocmf/receipt", None, 200, None, 1.3, "receipt")
    figures = []
    for n in (1, 10, 100):
        latencies = array("d", [0.2 + (k % 50) * 0.37 for k in range(n)])  # 0.2 to 18.3 ms: several buckets
        run = PollRun(journal, 0, array("d", [float(k) for k in range(n)]), latencies)
        loops = 200_000 // n
        best = min(timeit.repeat(lambda run=run: listener.on_polls(run), number=loops, repeat=7))
        figures.append(f"run of {n}: {best / loops / n * 1e9:.0f}")
    best = min(timeit.repeat(lambda: listener.on_entry(entry), number=200_000, repeat=7))
    figures.append(f"entry: {best / 200_000 * 1e9:.0f}")
    print(f"{name:<32} ns per poll, {', '.join(figures)}")


def main() -> None:
    meters = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    twin = new_twin(1)
    serial, slot = next(iter(twin.slots.items()))
    Metrics(twin).hook()
    time_listener("listener (app)", slot.host.journal, slot.host.journal.listeners[-1])
    time_listener("listener (prometheus_client)", slot.host.journal, NativeListener(serial))

    twin = new_twin(meters)
    metrics = create_control_app(twin)[METRICS_KEY]  # with the conformance monitors, as served
    for slot in twin.slots.values():
        for k in range(20):
            slot.host.journal.add(0, 0, "GET", POLL, None, 200, None, 0.3 + k)
        slot.host.journal.add(0, 0, "POST", "/counter/v1/ocmf/receipt", None, 200, None, 2.0)
    body = generate_latest(metrics.registry)
    best = min(timeit.repeat(lambda: generate_latest(metrics.registry), number=5, repeat=5)) / 5
    lines = body.count(b"\n")
    print(f"scrape of {meters} meters: {best * 1000:.1f} ms, {len(body)} bytes, {lines} lines")


if __name__ == "__main__":
    main()
