"""What a scenario run gives back: the verdict, and for a failure the story a user reads (scenarios.md §2).

A story names the step, what was expected, what happened and the last requests on the wire; ``report``
renders results as text lines, JUnit XML and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

STEP_TEXT_LIMIT = 400


class StepFailure(Exception):
    """A check that did not hold: ``expected`` and ``got`` are one line each, in the user's words."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}; got {got}")
        self.expected = expected
        self.got = got


@dataclass
class Failure:
    """Why a run failed: the step's label (``step 3 (start)``), the step as written (flow YAML, its note
    apart), expected and got, and the last requests on the wire (``matching.describe_entry`` lines)."""

    step: str
    step_text: str
    expected: str
    got: str
    requests: list[str]
    note: str | None = None

    def story(self) -> str:
        """The failure story: indented lines, the requests last."""
        lines = [f"  at {self.step}: {self.step_text}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append(f"  expected: {self.expected}")
        lines.append(f"  got:      {self.got}")
        if self.requests:
            lines.append("  last requests on the wire:")
            lines.extend(f"    {line}" for line in self.requests)
        else:
            lines.append("  no requests on the wire")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """``{"step", "step_text", "note", "expected", "got", "requests"}`` for the JSON report."""
        return {
            "step": self.step,
            "step_text": self.step_text,
            "note": self.note,
            "expected": self.expected,
            "got": self.got,
            "requests": list(self.requests),
        }


@dataclass
class ScenarioResult:
    """One scenario's verdict: ``sim_seconds`` of simulated time from the epoch, ``wall_seconds`` it took,
    the steps that ran to the end, and the failure (None when it passed)."""

    path: str
    name: str
    passed: bool
    sim_seconds: float
    wall_seconds: float
    steps_run: int
    failure: Failure | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON report's entry: verdict ``PASS``/``FAIL``, times rounded to the millisecond."""
        return {
            "path": self.path,
            "name": self.name,
            "verdict": "PASS" if self.passed else "FAIL",
            "sim_seconds": round(self.sim_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "steps_run": self.steps_run,
            "failure": self.failure.as_dict() if self.failure else None,
        }


def step_text(raw: dict[str, Any]) -> str:
    """A step as the user wrote it, in YAML flow style without its note, cut at 400 characters."""
    shown = {key: value for key, value in raw.items() if key != "note"}
    text = yaml.safe_dump(shown, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text if len(text) <= STEP_TEXT_LIMIT else text[: STEP_TEXT_LIMIT - 3] + "..."
