"""The ``wire`` lines of a recorded trace, and their replay through a conformance monitor.

The grammar: tests/simulator/conformance/traces/README.md.

``GET v1/metervalue -> 200 (x5)`` or ``POST v1/receipt {"TX":"B"} -> 428 gw_not_set [b_before_gw] (x4)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.conformance import TrueTime, attach, build_report
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.model import Meter, RamMemory, get_profile
from iemdcr_twin.simulator.ocmf import Signer
from tests.support.clock import FakeTime
from tests.support.twin import S1

POLL_GAP_S = 1.0  # synthetic timing of traces/README.md
RETRY_GAP_S = 0.25
OTHER_GAP_S = 0.05
SERIAL = S1

_HEAD = re.compile(r"(GET|POST|PUT|DELETE) (v[12])/([a-z]+) ?")
_TAIL = re.compile(r"-> (\d{3})(?: ([a-z_]+))?(?: \[([a-z_,]+)\])?(?: \(x([1-9][0-9]*)\))?")


class WireSyntaxError(ValueError):
    """A wire line that does not follow the grammar of traces/README.md."""


@dataclass(frozen=True)
class WireLine:
    """One line: a request, its answer, the findings noted on it then, and how many times it came in a row."""

    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    error: str | None
    findings: tuple[str, ...]
    times: int

    @property
    def node(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_poll(self) -> bool:
        return self.method == "GET" and self.node == "metervalue"

    def same_request(self, other: WireLine | None) -> bool:
        return other is not None and (self.method, self.path, self.body) == (other.method, other.path, other.body)


def parse_line(line: str) -> WireLine:
    """Parse one wire line; WireSyntaxError names what is wrong."""
    head = _HEAD.match(line)
    if head is None:
        raise WireSyntaxError(f"{line!r}: expected METHOD v1/node or v2/node at the start")
    method, version, node = head.groups()
    rest = line[head.end() :]
    body: dict[str, Any] | None = None
    if rest.startswith("{"):
        try:
            body, end = json.JSONDecoder().raw_decode(rest)
        except ValueError as exc:
            raise WireSyntaxError(f"{line!r}: the body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise WireSyntaxError(f"{line!r}: the body is not a JSON object")
        rest = rest[end:].lstrip(" ")
    tail = _TAIL.fullmatch(rest)
    if tail is None:
        raise WireSyntaxError(f"{line!r}: expected '-> status [error] [[findings]] [(xN)]' after the request")
    status, error, findings, times = tail.groups()
    return WireLine(
        method,
        f"/counter/{version}/ocmf/{node}",
        body,
        int(status),
        error,
        tuple(findings.split(",")) if findings else (),
        int(times or 1),
    )


def timed(lines: list[WireLine]) -> Iterator[tuple[float, WireLine]]:
    """Each request once (folds unfolded) with its gap to the one before it, by the synthetic timing."""
    previous: WireLine | None = None
    for line in lines:
        for _ in range(line.times):
            if line.is_poll:
                gap = POLL_GAP_S
            elif line.same_request(previous):
                gap = RETRY_GAP_S
            else:
                gap = OTHER_GAP_S
            yield gap, line
            previous = line


@dataclass(frozen=True)
class Replayed:
    report: dict[str, Any]  # the conformance report at the last request
    findings: list[tuple[str, ...]]  # the finding codes the monitor put on each request, in order


def replay(trace: dict[str, Any], power_cycle_before: int | None = None, epoch: float = 1.8e9) -> Replayed:
    """Replay a trace's wire through a fresh monitor: the report at the last request, the findings per request.

    ``power_cycle_before``: power-cycle the meter before the request with this index (folds unfolded). The
    answers come from the trace; the meter's begin and end events are rebuilt from them.
    """
    mono = FakeTime(0.0)
    clock = SimClock("virtual", 1.0, epoch, monotonic=mono, wall=lambda: 0.0)
    meter = Meter(
        get_profile("iem-dcr-125"), SERIAL, clock.now, RamMemory(), lambda g: Signer.from_seed("t", SERIAL, g)
    )
    host = MeterHost(meter, clock, Journal(10_000))
    monitor = attach(host, TrueTime.UNKNOWN)  # the trace's times are from the past: its true time is unknown
    lines = [parse_line(text) for text in trace["wire"]]
    for index, (gap, line) in enumerate(timed(lines)):
        mono.t += gap
        if index == power_cycle_before:
            meter.power_off()
            meter.power_on()
        host.journal.add(clock.now(), 0.0, line.method, line.path, line.body, line.status, line.error, 1.0)
        host.journal.flush()  # the meter's events below come after the request, as on a real meter
        tx = (line.body or {}).get("TX") if line.node == "receipt" and line.method == "POST" else None
        if line.status == 200 and tx == "B":
            monitor.on_meter_event("transaction_begin", {})
        elif line.status == 200 and tx == "E":
            monitor.on_meter_event("transaction_end", {})
    report = build_report(monitor)
    return Replayed(report, [tuple(entry.findings) for entry in host.journal.entries()])


def verdict_matches(expected: str, got: str) -> bool:
    """``PASS``, ``PASS or WARN`` (either), ``not FAIL`` (anything else), as in ``expected_verdicts``."""
    expected = expected.strip()
    if expected.startswith("not "):
        return got != expected.removeprefix("not ").strip()
    return got in [option.strip() for option in expected.split(" or ")]
