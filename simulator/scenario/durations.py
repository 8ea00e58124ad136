"""Durations as scenario files write them: ``250ms``, ``30s``, ``30m``, ``2h`` (and decimals: ``1.5s``)."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"  # as in schema.json (ECMA-262: $ is the end of the text)
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")  # the same, matched in full
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def capped_pattern(max_seconds: int, *, above_zero: bool = False) -> str:
    """``DURATION_PATTERN`` for durations of at most ``max_seconds`` (a whole number of ms, s, m and h), as
    ``schema.json`` caps ``advance`` and ``wait``: per unit, a whole part below the cap with any fraction, or the
    cap with a zero fraction (leading zeros allowed, as in ``DURATION_PATTERN``). With ``above_zero`` a zero
    duration (``0s``, ``0.000ms``) is refused too, as ``advance`` refuses it: a lookahead wants a digit 1-9 in
    the number. ECMA-262 and Python read it alike."""
    branches = []
    for unit, unit_seconds in sorted(_UNIT_SECONDS.items(), key=lambda item: item[1]):
        most = max_seconds * 1000 // round(unit_seconds * 1000)
        assert most * round(unit_seconds * 1000) == max_seconds * 1000, "the cap must be whole in every unit"
        branches.append(f"0*(?:{_below(str(most))})(?:\\.[0-9]+)?{unit}")
        branches.append(f"0*{most}(?:\\.0+)?{unit}")
    return "^" + ("(?=[0-9.]*[1-9])" if above_zero else "") + "(?:" + "|".join(branches) + ")$"


def _below(limit: str) -> str:
    """Alternatives matching the whole numbers below ``limit`` (decimal digits, no leading zero)."""
    options = [f"[0-9]{{1,{len(limit) - 1}}}"] if len(limit) > 1 else []
    for index, digit in enumerate(limit):
        if digit != "0":
            rest = len(limit) - index - 1
            smaller = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            options.append(limit[:index] + smaller + (f"[0-9]{{{rest}}}" if rest else ""))
    return "|".join(options)


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
