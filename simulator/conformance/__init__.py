"""Conformance of other drivers (scenarios.md §4): checks over a meter's journal, reports, signatures."""

from .monitor import ConformanceMonitor, attach, monitor_of
from .report import build_report, render_text
from .signing import sign_report, verify_document
from .verdicts import Verdict

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
