"""Durations as scenario files write them: ``250ms``, ``30s``, ``30m``, ``2h`` (and decimals: ``1.5s``)."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"  # as in schema.json (ECMA-262: $ is the end of the text)
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")  # the same, matched in full
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError with a hint for anything else (bare numbers too: say the unit)."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration: write it with a unit, e.g. 250ms, 30s, 30m, 2h")
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write it with a unit, e.g. 250ms, 30s, 30m, 2h")
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[unit]


def format_duration(seconds: float) -> str:
    """A short human rendering for reports: ``0.25s``, ``90s``, ``30m``, ``2h 5m``."""
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if secs:
        parts.append(f"{secs}s")
    return " ".join(parts)
