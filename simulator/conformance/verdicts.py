"""Verdicts, findings and evidence: the vocabulary every check and the report share."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from iemdcr_twin.simulator.journal import JournalEntry

MAX_EVIDENCE = 20
MAX_BODY_CHARS = 300


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    NOT_EXERCISED = "NOT_EXERCISED"


# Worst first: the overall verdict is the worst one any check earned.
SEVERITY = [Verdict.FAIL, Verdict.WARN, Verdict.PASS, Verdict.NOT_EXERCISED]


def worst(verdicts: list[Verdict]) -> Verdict:
    for verdict in SEVERITY:
        if verdict in verdicts:
            return verdict
    return Verdict.NOT_EXERCISED


def snapshot(entry: JournalEntry) -> dict[str, Any]:
    """A copy of what the evidence needs, so it outlives the journal's ring buffer."""
    body = entry.body
    if isinstance(body, str) and len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS] + "..."
    return {
        "seq": entry.seq,
        "sim_time": entry.sim_time,
        "method": entry.method,
        "path": entry.path,
        "body": body,
        "status": entry.status,
        "error": entry.error,
    }


@dataclass
class Finding:
    """One problem a check saw, tied to the request that showed it (or to a meter event)."""

    check: str
    code: str
    verdict: Verdict
    message: str
    sim_time: float
    entry: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None  # figures a check measured, e.g. {"skew_s": 3600.0}

    def as_dict(self) -> dict[str, Any]:
        found = {
            "check": self.check,
            "code": self.code,
            "verdict": self.verdict.value,
            "message": self.message,
            "sim_time": self.sim_time,
            "seq": None if self.entry is None else self.entry["seq"],
            "entry": self.entry,
        }
        if self.detail is not None:
            found["detail"] = dict(self.detail)
        return found


@dataclass
class CheckState:
    """What one check accumulated: how often its situation arose, and what went wrong (evidence capped).

    A check's verdict is the worst of its findings' verdicts: most checks find only FAIL (protocol) or only
    WARN (charger inputs), but one check may find both (``gw_once_per_power_cycle``, ``meter_time_true``).
    """

    id: str
    title: str
    severity: Verdict  # what a finding of this check is unless it says otherwise: FAIL, or WARN for inputs
    exercised: int = 0
    finding_count: int = 0
    evidence: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worst_found: Verdict | None = None

    @property
    def verdict(self) -> Verdict:
        if self.worst_found is not None:
            return self.worst_found
        return Verdict.PASS if self.exercised else Verdict.NOT_EXERCISED

    def add(self, finding: Finding) -> None:
        self.finding_count += 1
        if self.worst_found is None or SEVERITY.index(finding.verdict) < SEVERITY.index(self.worst_found):
            self.worst_found = finding.verdict
        if len(self.evidence) < MAX_EVIDENCE:
            self.evidence.append(finding)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "verdict": self.verdict.value,
            "exercised": self.exercised,
            "findings": self.finding_count,
            "evidence": [finding.as_dict() for finding in self.evidence],
            "evidence_truncated": self.finding_count > len(self.evidence),
            "notes": list(self.notes),
        }
