"""The conformance report: JSON for machines (and signing), a text rendering for people."""

from __future__ import annotations

import time
from typing import Any

from iemdcr_twin.simulator.conformance.monitor import ConformanceMonitor
from iemdcr_twin.simulator.conformance.verdicts import Verdict, worst

REPORT_FORMAT = "iemdcr-conformance/1"


def build_report(monitor: ConformanceMonitor) -> dict[str, Any]:
    """The report as of now (pending situations are judged first)."""
    monitor.host.journal.flush()
    monitor.finish()
    meter = monitor.host.meter
    checks = [check.state for check in monitor.checks]
    verdicts = [state.verdict for state in checks]
    return {
        "format": REPORT_FORMAT,
        "meter": {
            "serial": meter.serial,
            "model": meter.profile.model,
            "firmware": meter.profile.firmware,
            "key_fingerprint": meter.signer.fingerprint,
        },
        "generated": {"sim_time": monitor.host.clock.now(), "wall_time": time.time()},
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
        lines.append(f"{check['verdict']:<14} {check['title']}  [{check['id']}, exercised {check['exercised']}]")
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
