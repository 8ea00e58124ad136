"""Expected-versus-actual matching shared by the expect steps: conditions, subsets, journal sub-sequences.

A scenario writes an expected value as a plain value (equality; numbers within a tiny tolerance), as a
nested mapping (a subset: only the keys written are compared) or as a **condition**: a mapping whose keys are
all operators, e.g. ``{gte: 59, lte: 61}``, ``{approx: 400, tol: 0.5}``, ``{contains: "gw"}``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

OPERATORS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "approx", "tol", "contains", "not_contains", "matches", "in"}
)
REL_TOLERANCE = 1e-9


def is_condition(value: Any) -> bool:
    """Whether ``value`` is a condition: a non-empty mapping whose keys are all OPERATORS."""
    return isinstance(value, dict) and bool(value) and set(value) <= OPERATORS


def show(value: Any) -> str:
    """Compact JSON-ish rendering for failure stories."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, actual: Any) -> bool:
    if _is_number(expected) and _is_number(actual):
        return math.isclose(float(expected), float(actual), rel_tol=REL_TOLERANCE, abs_tol=1e-9)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def _condition(cond: dict[str, Any], actual: Any, where: str) -> list[str]:
    problems: list[str] = []

    def fail(text: str) -> None:
        problems.append(f"{where}: expected {text}, got {show(actual)}")

    for op, want in cond.items():
        if op == "tol":
            continue
        if op == "eq" and not _equal(want, actual):
            fail(f"== {show(want)}")
        elif op == "ne" and _equal(want, actual):
            fail(f"!= {show(want)}")
        elif op in ("gt", "gte", "lt", "lte", "approx"):
            if not _is_number(actual):
                fail(f"a number ({op} {show(want)})")
                continue
            tol = cond.get("tol", 1e-3 * max(1.0, abs(float(want))))
            ok = {
                "gt": actual > want,
                "gte": actual >= want - 1e-9,
                "lt": actual < want,
                "lte": actual <= want + 1e-9,
                "approx": abs(actual - want) <= tol,
            }[op]
            if not ok:
                fail(f"{op} {show(want)}" + (f" (tol {tol:g})" if op == "approx" else ""))
        elif op == "contains":
            if not (isinstance(actual, str | list) and want in actual):
                fail(f"something containing {show(want)}")
        elif op == "not_contains":
            if isinstance(actual, str | list) and want in actual:
                fail(f"something not containing {show(want)}")
        elif op == "matches":
            if not (isinstance(actual, str) and re.search(str(want), actual)):
                fail(f"a string matching /{want}/")
        elif op == "in" and not any(_equal(option, actual) for option in want):
            fail(f"one of {show(want)}")
    return problems


def compare(expected: Any, actual: Any, where: str = "value") -> list[str]:
    """Every mismatch between ``expected`` (plain, subset mapping or condition) and ``actual``; [] = match."""
    if is_condition(expected):
        return _condition(expected, actual, where)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object with {show(expected)}, got {show(actual)}"]
        problems: list[str] = []
        for key, want in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing (expected {show(want)})")
            else:
                problems.extend(compare(want, actual[key], f"{where}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list | tuple) or len(actual) != len(expected):
            return [f"{where}: expected {show(expected)}, got {show(actual)}"]
        problems = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            problems.extend(compare(want, got, f"{where}[{index}]"))
        return problems
    if not _equal(expected, actual):
        return [f"{where}: expected {show(expected)}, got {show(actual)}"]
    return []


# ---- requests on the wire ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireEntry:
    """What the matcher needs of a journal entry (simulator.journal.JournalEntry satisfies it)."""

    seq: int
    sim_time: float
    method: str
    path: str
    body: Any
    status: int
    error: str | None

    @property
    def node(self) -> str:
        """The path's last segment (``receipt`` of ``/counter/v1/ocmf/receipt``)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def path_matches(pattern: str, path: str) -> bool:
    """``receipt`` or ``rec*`` names the last segment; a pattern with ``/`` is a glob on the path's end."""
    if "/" not in pattern:
        node = path.rstrip("/").rsplit("/", 1)[-1]
        return fnmatch.fnmatchcase(node, pattern)
    if not pattern.startswith("/"):
        pattern = "*/" + pattern
    return fnmatch.fnmatchcase(path, pattern)


def entry_problems(pattern: dict[str, Any], entry: Any) -> list[str]:
    """Why ``entry`` does not match ``pattern`` (method, path/node, body subset, status, error)."""
    problems: list[str] = []
    method = pattern.get("method")
    if method is not None and str(method).upper() != entry.method:
        problems.append(f"method {entry.method} != {method}")
    for key in ("path", "node"):
        if key in pattern and not path_matches(str(pattern[key]), entry.path):
            problems.append(f"path {entry.path} does not match {pattern[key]!r}")
    if "body" in pattern:
        problems.extend(compare(pattern["body"], entry.body, "body"))
    if "status" in pattern:
        problems.extend(compare(pattern["status"], entry.status, "status"))
    if "error" in pattern:
        problems.extend(compare(pattern["error"], entry.error, "error"))
    return problems


def describe_pattern(pattern: dict[str, Any]) -> str:
    """``POST receipt {"TX":"B"} -> 428 x4``: a request pattern in one line."""
    parts = [str(pattern.get("method", "*")), str(pattern.get("path", pattern.get("node", "*")))]
    if "body" in pattern:
        parts.append(show(pattern["body"]))
    if "status" in pattern:
        parts.append(f"-> {show(pattern['status'])}")
    if "error" in pattern:
        parts.append(f"({show(pattern['error'])})")
    if pattern.get("times", 1) != 1:
        parts.append(f"x{pattern['times']}")
    return " ".join(parts)


def describe_entry(entry: Any, origin: float | None = None) -> str:
    """``#12 t+1.250s POST /counter/v1/ocmf/receipt {"TX":"B"} -> 428 current_above_threshold``."""
    body = "" if entry.body is None else " " + show(entry.body)
    error = f" {entry.error}" if entry.error else ""
    at = "" if origin is None else f" t+{entry.sim_time - origin:.3f}s"
    return f"#{entry.seq}{at} {entry.method} {entry.path}{body} -> {entry.status}{error}"


def match_subsequence(patterns: Sequence[dict[str, Any]], entries: Sequence[Any]) -> str | None:
    """Ordered sub-sequence match: None when every pattern (``times`` each) matches, in order; else why not."""
    position = 0
    for index, pattern in enumerate(patterns):
        for repetition in range(int(pattern.get("times", 1))):
            while position < len(entries) and entry_problems(pattern, entries[position]):
                position += 1
            if position >= len(entries):
                nth = f" (occurrence {repetition + 1} of {pattern['times']})" if pattern.get("times", 1) != 1 else ""
                return f"request [{index}] {describe_pattern(pattern)}{nth} not found in order" + (
                    _closest(pattern, entries)
                )
            position += 1
    return None


def _closest(pattern: dict[str, Any], entries: Sequence[Any]) -> str:
    """A hint: the entry that came closest (fewest mismatches) and why it did not match."""
    best: tuple[int, Any, list[str]] | None = None
    for entry in entries:
        problems = entry_problems(pattern, entry)
        if best is None or len(problems) < best[0]:
            best = (len(problems), entry, problems)
    if best is None:
        return "; no requests in scope"
    return f"; closest: {describe_entry(best[1])} ({'; '.join(best[2])})"


def matching(pattern: dict[str, Any], entries: Sequence[Any]) -> list[Any]:
    """The entries that match ``pattern``, in order."""
    return [entry for entry in entries if not entry_problems(pattern, entry)]
