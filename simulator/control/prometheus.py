"""The twin's Prometheus metrics, for ``prometheus_client`` to expose (served by metrics.py, text format 0.0.4).

Two halves. On the request path each meter's journal listener counts into plain numbers: a run of polls is one
addition to the request count and one pass of its latencies over the buckets (docs/performance.md: the 1 Hz
poll is most of all traffic). prometheus_client's own ``Counter`` and ``Histogram`` take a lock per increment
and per observation: 2-5 times the listener's cost (docs/performance.md, "Metrics through prometheus_client").
At scrape time ``Metrics.collect`` turns those counts, and what the meters hold (their counters, state and
registers), into metric families. Each control app has its own ``Metrics`` and registry (``Metrics.registry``),
so two twins in one process never share a series.

Names follow the Prometheus conventions: base units (``_seconds``, ``_joules``), ``_total`` on counters
(prometheus_client adds it to a counter family's name), every series labelled with its meter's serial.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from iemdcr_twin.simulator.fleet import MeterSlot, Twin
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import JournalEntry, PollRun
from iemdcr_twin.simulator.meter_api import JSON_GET, JSON_POST
from iemdcr_twin.simulator.model import energy

LATENCY_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)  # as the journal keeps them
LATENCY_BUCKETS_S = tuple(bound / 1000 for bound in LATENCY_BUCKETS_MS)  # Prometheus shows seconds
_LE = (*(repr(bound) for bound in LATENCY_BUCKETS_S), "+Inf")  # le labels, as prometheus_client's Histogram writes them
KNOWN_NODES = frozenset(JSON_GET) | frozenset(JSON_POST) | {"metervalue", "receipt", "transaction"}
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
METER_COUNTERS = {  # Meter.counters key: help text (the series is iemdcr_<key>_total)
    "transactions": "Transactions begun",
    "signatures": "Signed records made",
    "faults_raised": "Meter faults raised",
    "power_cycles": "Power-ups after a power-off",
}


class Histogram:
    """Cumulative-bucket latency histogram of one meter (``buckets`` per bound of ``LATENCY_BUCKETS_MS``, then
    one beyond the last; ``total`` in seconds)."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.count = 0
        self.total = 0.0

    def observe_ms(self, latencies_ms: Sequence[float]) -> None:
        """Observations in milliseconds, as the journal keeps them (a whole run of polls at once)."""
        buckets, bounds, find = self.buckets, LATENCY_BUCKETS_MS, bisect.bisect_left
        for latency in latencies_ms:
            buckets[find(bounds, latency)] += 1
        self.count += len(latencies_ms)
        self.total += sum(latencies_ms) / 1000

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, observations at or below it)`` for every bound and ``+Inf``: HistogramMetricFamily's buckets."""
        running = 0
        out: list[tuple[str, float]] = []
        for le, count in zip(_LE, self.buckets, strict=True):
            running += count
            out.append((le, running))
        return out


class _MeterRequests:
    """One meter's journal listener: counts requests by node, method and status, and their latencies."""

    def __init__(self, requests: Counter[tuple[str, str, str, int]], serial: str, latency: Histogram) -> None:
        self.requests = requests
        self.serial = serial
        self.latency = latency
        self.poll_key = (serial, "metervalue", "GET", 200)

    def on_entry(self, entry: JournalEntry) -> None:
        node = entry.node if entry.node in KNOWN_NODES else "other"
        method = entry.method if entry.method in KNOWN_METHODS else "other"
        self.requests[(self.serial, node, method, entry.status)] += 1
        self.latency.observe_ms((entry.latency_ms,))

    def on_polls(self, run: PollRun) -> None:
        self.requests[self.poll_key] += len(run)
        self.latency.observe_ms(run.latencies_ms)


class Metrics(Collector):
    """The metrics of one twin: journal listeners count (``hook``); ``collect`` makes the families at each
    scrape of ``registry`` (a ``CollectorRegistry`` of this twin alone; expose it with ``generate_latest``)."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.requests: Counter[tuple[str, str, str, int]] = Counter()  # (serial, node, method, status)
        self.latency: dict[str, Histogram] = {}
        self._hooked: set[int] = set()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def hook(self) -> None:
        """Listen to every meter's journal (idempotent: meters added later are picked up at the next scrape)."""
        for serial, slot in self.twin.slots.items():
            journal = slot.host.journal
            if id(journal) not in self._hooked:
                self._hooked.add(id(journal))
                histogram = self.latency.setdefault(serial, Histogram())
                journal.listeners.append(_MeterRequests(self.requests, serial, histogram))

    def collect(self) -> Iterator[Metric]:
        """Every family of the twin now (journals flushed first, so every request so far counts; registers
        integrated up to now)."""
        for slot in self.twin.slots.values():
            slot.host.journal.flush()
        self.hook()
        slots = list(self.twin.slots.values())
        requests = CounterMetricFamily(
            "iemdcr_requests",
            "Meter-API requests by meter, node, method and status (status 0: the connection was closed without an "
            "answer)",
            labels=("meter", "node", "method", "status"),
        )
        for (serial, node, method, status), value in sorted(self.requests.items()):
            requests.add_metric((serial, node, method, str(status)), value)
        yield requests
        latency = HistogramMetricFamily(
            "iemdcr_request_duration_seconds",
            "Meter-API request latency as the twin measured it",
            labels=("meter",),
            unit="seconds",
        )
        for serial, histogram in sorted(self.latency.items()):
            latency.add_metric((serial,), histogram.cumulative(), histogram.total)
        yield latency
        for name, help_text in METER_COUNTERS.items():
            yield _per_meter(CounterMetricFamily, f"iemdcr_{name}", help_text, slots, _counter(name))
        yield from _gauges(slots)
        network = CounterMetricFamily(
            "iemdcr_network_faults", "Network faults injected, by action", labels=("meter", "action")
        )
        for slot in slots:
            for action, value in sorted(_network_fired(slot).items()):
                network.add_metric((slot.meter.serial, action), value)
        yield network
        findings = CounterMetricFamily(
            "iemdcr_conformance_findings",
            "Conformance findings raised by the driver's requests, by code",
            labels=("meter", "code"),
        )
        for slot in slots:
            for code, value in sorted(findings_by_code(slot.host).items()):
                findings.add_metric((slot.meter.serial, code), value)
        yield findings


def findings_by_code(host: MeterHost) -> dict[str, int]:
    """Conformance findings per code: the meter's monitor (``host.conformance``) counts them beyond the
    journal's ring buffer; without one, the findings on the entries still in the journal count."""
    if host.conformance is not None:
        return {str(code): int(value) for code, value in host.conformance.counts.items()}
    found: Counter[str] = Counter()
    for entry in host.journal.entries():
        found.update(entry.findings)
    return dict(found)


def _network_fired(slot: MeterSlot) -> dict[str, int]:
    faults = slot.host.network_faults  # None until a meter's network faults are first used
    return dict(faults.fired) if faults is not None else {}


def _counter(name: str) -> Callable[[MeterSlot], float]:
    return lambda slot: slot.meter.counters.get(name, 0)


def _joules(mwh: int) -> float:
    """A register in whole mWh as joules (1 mWh = 3.6 J), the nearest float: one division of two ints."""
    return mwh * energy.UJ_PER_MWH / 1_000_000


def _gauges(slots: list[MeterSlot]) -> Iterator[Metric]:
    readings = {slot.meter.serial: slot.meter.live_reading() for slot in slots}  # the registers up to now
    rows: tuple[tuple[str, str, Callable[[MeterSlot], float]], ...] = (
        ("iemdcr_meter_powered", "1 when the meter is powered", lambda s: int(s.meter.powered)),
        ("iemdcr_transaction_active", "1 while a transaction runs", lambda s: int(s.meter.transaction is not None)),
        ("iemdcr_active_faults", "Meter faults currently raised", lambda s: len(s.meter.faults)),
        ("iemdcr_signed_records", "Signed records in the meter's history", lambda s: len(s.meter.records)),
        (
            "iemdcr_import_register_joules",
            "Absolute import register in joules (the meter shows whole mWh: 1 mWh = 3.6 J)",
            lambda s: _joules(readings[s.meter.serial].import_mwh),
        ),
        (
            "iemdcr_export_register_joules",
            "Absolute export register in joules (the meter shows whole mWh: 1 mWh = 3.6 J)",
            lambda s: _joules(readings[s.meter.serial].export_mwh),
        ),
    )
    for name, help_text, value in rows:
        unit = "joules" if name.endswith("_joules") else ""
        yield _per_meter(GaugeMetricFamily, name, help_text, slots, value, unit)


def _per_meter(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    help_text: str,
    slots: list[MeterSlot],
    value: Callable[[MeterSlot], float],
    unit: str = "",
) -> Metric:
    metric = family(name, help_text, labels=("meter",), unit=unit)
    for slot in slots:
        metric.add_metric((slot.meter.serial,), value(slot))
    return metric
