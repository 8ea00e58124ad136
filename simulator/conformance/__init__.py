"""Conformance of other drivers (scenarios.md §4): checks over a meter's journal, reports, signatures."""

from iemdcr_twin.simulator.conformance.monitor import ALL_CHECKS, ConformanceMonitor, WindowError, attach, monitor_of
from iemdcr_twin.simulator.conformance.report import MonitorReports, build_report, parse_until, render_text
from iemdcr_twin.simulator.conformance.signing import sign_report, verify_document
from iemdcr_twin.simulator.conformance.situation import TrueTime
from iemdcr_twin.simulator.conformance.verdicts import Verdict

__all__ = [
    "ALL_CHECKS",
    "ConformanceMonitor",
    "MonitorReports",
    "TrueTime",
    "Verdict",
    "WindowError",
    "attach",
    "build_report",
    "monitor_of",
    "parse_until",
    "render_text",
    "sign_report",
    "verify_document",
]
