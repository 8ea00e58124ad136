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

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "code": self.code,
            "verdict": self.verdict.value,
            "message": self.message,
            "sim_time": self.sim_time,
            "seq": None if self.entry is None else self.entry["seq"],
            "entry": self.entry,
        }


@dataclass
class CheckState:
    """What one check accumulated: how often its situation arose, and what went wrong (evidence capped)."""

    id: str
    title: str
    severity: Verdict  # FAIL for protocol checks, WARN for charger inputs
    exercised: int = 0
    finding_count: int = 0
    evidence: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        if self.finding_count:
            return self.severity
        return Verdict.PASS if self.exercised else Verdict.NOT_EXERCISED

    def add(self, finding: Finding) -> None:
        self.finding_count += 1
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
