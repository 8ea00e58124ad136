"""Conformance of other drivers (scenarios.md §4): checks over a meter's journal, reports, signatures."""

from iemdcr_twin.simulator.conformance.monitor import ConformanceMonitor, attach, monitor_of
from iemdcr_twin.simulator.conformance.report import build_report, render_text
from iemdcr_twin.simulator.conformance.signing import sign_report, verify_document
from iemdcr_twin.simulator.conformance.verdicts import Verdict

__all__ = [
    "ConformanceMonitor",
    "Verdict",
    "attach",
    "build_report",
    "monitor_of",
    "render_text",
    "sign_report",
    "verify_document",
]
