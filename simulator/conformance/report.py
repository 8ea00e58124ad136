"""The conformance report: JSON for machines (and signing), a text rendering for people."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from iemdcr_twin.simulator.conformance.monitor import ConformanceMonitor, attach
from iemdcr_twin.simulator.conformance.verdicts import Verdict, worst
from iemdcr_twin.simulator.host import MeterHost

REPORT_FORMAT = "iemdcr-conformance/1"


_EPOCH_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"  # date, time, fraction
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"  # the offset (group 1)
)


def parse_until(text: str) -> float:
    """A report window's end as simulated epoch seconds: RFC 3339 with an offset, or seconds since the epoch.

    ``2025-06-15T15:07:40Z``, ``2025-06-15T17:07:40.5+02:00`` or ``1750000060.5`` (ASCII digits only, nothing
    around them). Raises ValueError saying what is wrong.
    """
    if _EPOCH_SECONDS.fullmatch(text):
        return float(text)
    shown = repr(text[:60])
    rfc3339 = _RFC3339.fullmatch(text)
    if rfc3339 is None:
        raise ValueError(
            f"{shown} is neither RFC 3339 with an offset (e.g. 2025-06-15T15:07:40Z) nor seconds since the epoch"
            " (e.g. 1750000060.5)"
        )
    if rfc3339.group(1) is None:
        raise ValueError(f"{shown} has no UTC offset; write Z or e.g. +02:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise ValueError(f"{shown} is not a valid date and time: {exc}") from None


def build_report(monitor: ConformanceMonitor, until: float | None = None) -> dict[str, Any]:
    """The report over the window from the monitor's start to ``until`` (simulated epoch seconds) or now.

    Pending situations (an unfetched record, the gap after the last poll) are judged at the window's end.
    Raises ``WindowError`` when ``until`` is before the last request judged or after now.
    """
    end = monitor.finish(until)
    meter = monitor.host.meter
    checks = [check.state for check in monitor.checks]
    verdicts = [state.verdict for state in checks]
    return {
        "format": REPORT_FORMAT,
        "meter": {
            "serial": meter.serial,
            "model": meter.profile.MM,
            "firmware": meter.profile.GV,
            "key_fingerprint": meter.signer.fingerprint,
        },
        "generated": {"sim_time": monitor.host.clock.now(), "wall_time": time.time()},
        "window": {"end_sim_time": end, "closed_by": "report" if until is None else "until"},
        "true_time": monitor.true_time.value,
        "observed": {
            "attached_after_seq": monitor.attached_after_seq,
            "first_seq": monitor.first_seq,
            "last_seq": monitor.last_seq,
            "requests": monitor.requests,
            "power_events": monitor.power_events,
        },
        "verdict": worst(verdicts).value,
        "counts": {verdict.value: verdicts.count(verdict) for verdict in Verdict},
        "checks": [state.as_dict() for state in checks],
        "findings_by_code": dict(sorted(monitor.counts.items())),
    }


def render_text(report: dict[str, Any]) -> str:
    """A readable rendering: one line per check, then the evidence of every WARN and FAIL."""
    meter = report.get("meter", {})
    observed = report.get("observed", {})
    lines = [
        f"Conformance report for meter {meter.get('serial')} ({meter.get('model')})",
        f"Overall verdict: {report.get('verdict')}   "
        + "  ".join(f"{name} {count}" for name, count in report.get("counts", {}).items()),
        f"Requests observed: {observed.get('requests')} (seq {observed.get('first_seq')}..{observed.get('last_seq')}),"
        f" power events: {observed.get('power_events')}",
        "",
    ]
    for check in report.get("checks", []):
        counts = f"situation arose {check['exercised']} time(s), {check['findings']} finding(s)"  # JSON: exercised
        lines.append(f"{check['verdict']:<14} {check['title']}  [{check['id']}: {counts}]")
    for check in report.get("checks", []):
        if not check["evidence"]:
            continue
        more = " (more not shown)" if check.get("evidence_truncated") else ""
        lines += ["", f"{check['verdict']} {check['id']}: {check['findings']} finding(s){more}"]
        for finding in check["evidence"]:
            entry = finding.get("entry") or {}
            where = f"seq {entry.get('seq')} {entry.get('method')} {entry.get('path')} -> {entry.get('status')}"
            lines.append(f"  t={finding['sim_time']:.3f} {where}: {finding['message']}")
    return "\n".join(lines) + "\n"


class MonitorReports:
    """Reports as the control plane's ``GET /api/meters/{serial}/conformance`` asks for them.

    Implements ``control.keys.ConformanceReports``: the control package defines what it needs and imports
    nothing of conformance; ``simulator/app.py`` plugs this in when it builds the control app.
    """

    def watch(self, host: MeterHost) -> None:
        """Start judging the meter's traffic now (idempotent; ``attach`` with the wall clock as the truth)."""
        attach(host)

    def report(self, host: MeterHost, until: str | None) -> dict[str, Any]:
        """The meter's report, its window closed at ``until`` (text for ``parse_until``) or now.

        Raises ValueError (a message for ``until: ...``) when ``until`` is no time or outside the window.
        """
        end = None if until is None else parse_until(until)
        return build_report(attach(host), end)

    def render_text(self, report: dict[str, Any]) -> str:
        """The report for people (``?format=text``)."""
        return render_text(report)
