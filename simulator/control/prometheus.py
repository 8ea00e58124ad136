"""The twin in Prometheus text exposition format (version 0.0.4), written by hand (served by metrics.py).

Labs scrape a fleet with the Prometheus they already run; a hand-written exposition keeps the twin free of a
client library. Request counts and latencies come from the journals' listeners (so evicted entries still
count); transactions, signatures and faults from each meter's counters at scrape time. Names follow
Prometheus conventions: base units (``_seconds``, ``_wh``), ``_total`` for counters.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence

from iemdcr_twin.simulator.fleet import MeterSlot, Twin
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import JournalEntry, PollRun
from iemdcr_twin.simulator.meter_api import JSON_GET, JSON_POST

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LATENCY_BUCKETS_S = tuple(bound / 1000 for bound in LATENCY_BUCKETS_MS)  # Prometheus shows seconds
KNOWN_NODES = frozenset(JSON_GET) | frozenset(JSON_POST) | {"metervalue", "receipt", "transaction"}
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
METER_COUNTERS = {
    "transactions": "Transactions begun",
    "signatures": "Signed records made",
    "faults_raised": "Meter faults raised",
    "power_cycles": "Power-ups after a power-off",
}


class Histogram:
    """Cumulative-bucket latency histogram of one meter."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.count = 0
        self.total = 0.0

    def observe_ms(self, latencies_ms: Sequence[float]) -> None:
        """Observations in milliseconds, as the journal keeps them (a whole run of polls at once)."""
        buckets, bounds, find = self.buckets, LATENCY_BUCKETS_MS, bisect.bisect_left
        for latency in latencies_ms:
            buckets[find(bounds, latency)] += 1
        self.count += len(latencies_ms)
        self.total += sum(latencies_ms) / 1000


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


class Metrics:
    """Counters fed by the journals of a twin's meters (``hook``), rendered at each scrape (``render``)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str, int]] = Counter()
        self.latency: dict[str, Histogram] = {}
        self._hooked: set[int] = set()

    def hook(self, twin: Twin) -> None:
        """Listen to every meter's journal (idempotent: meters added later are picked up at the next scrape)."""
        for serial, slot in twin.slots.items():
            journal = slot.host.journal
            if id(journal) not in self._hooked:
                self._hooked.add(id(journal))
                histogram = self.latency.setdefault(serial, Histogram())
                journal.listeners.append(_MeterRequests(self.requests, serial, histogram))

    def render(self, twin: Twin) -> str:
        """The exposition text of ``twin`` now (journals flushed first, so every request so far counts)."""
        for slot in twin.slots.values():
            slot.host.journal.flush()
        self.hook(twin)
        out: list[str] = []
        slots = list(twin.slots.values())
        _family(
            out,
            "iemdcr_requests_total",
            "counter",
            "Meter-API requests by meter, node, method and status "
            "(status 0: the connection was closed without an answer)",
        )
        for (serial, node, method, status), value in sorted(self.requests.items()):
            out.append(
                _sample(
                    "iemdcr_requests_total",
                    {"meter": serial, "node": node, "method": method, "status": str(status)},
                    value,
                )
            )
        self._render_latency(out)
        for name, help_text in METER_COUNTERS.items():
            metric = f"iemdcr_{name}_total"
            _family(out, metric, "counter", help_text)
            out += [_sample(metric, {"meter": s.meter.serial}, s.meter.counters.get(name, 0)) for s in slots]
        _gauges(out, slots)
        _family(out, "iemdcr_network_faults_total", "counter", "Network faults injected, by action")
        for slot in slots:
            for action, value in sorted(_network_fired(slot).items()):
                out.append(
                    _sample("iemdcr_network_faults_total", {"meter": slot.meter.serial, "action": action}, value)
                )
        metric = "iemdcr_conformance_findings_total"
        _family(out, metric, "counter", "Conformance findings raised by the driver's requests, by code")
        for slot in slots:
            for code, value in sorted(findings_by_code(slot.host).items()):
                out.append(_sample(metric, {"meter": slot.meter.serial, "code": code}, value))
        return "\n".join(out) + "\n"

    def _render_latency(self, out: list[str]) -> None:
        metric = "iemdcr_request_duration_seconds"
        _family(out, metric, "histogram", "Meter-API request latency as the twin measured it")
        for serial, histogram in sorted(self.latency.items()):
            running = 0
            for bound, count in zip((*LATENCY_BUCKETS_S, None), histogram.buckets, strict=True):
                running += count
                le = "+Inf" if bound is None else repr(bound)
                out.append(_sample(metric + "_bucket", {"meter": serial, "le": le}, running))
            out.append(_sample(metric + "_sum", {"meter": serial}, histogram.total))
            out.append(_sample(metric + "_count", {"meter": serial}, histogram.count))


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


def _gauges(out: list[str], slots: Iterable[MeterSlot]) -> None:
    slots = list(slots)
    rows = (
        ("iemdcr_meter_powered", "1 when the meter is powered", lambda s: int(s.meter.powered)),
        ("iemdcr_transaction_active", "1 while a transaction runs", lambda s: int(s.meter.transaction is not None)),
        ("iemdcr_active_faults", "Meter faults currently raised", lambda s: len(s.meter.faults)),
        ("iemdcr_signed_records", "Signed records in the meter's history", lambda s: len(s.meter.records)),
        ("iemdcr_import_register_wh", "Absolute import register in Wh", lambda s: s.meter.registers.import_mwh / 1000),
    )
    for metric, help_text, value in rows:
        _family(out, metric, "gauge", help_text)
        out += [_sample(metric, {"meter": s.meter.serial}, value(s)) for s in slots]


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    rendered = ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items())
    return f"{name}{{{rendered}}} {_number(value)}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
