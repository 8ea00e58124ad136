"""Exact lazy energy integration of piecewise-linear load, and register formatting.

Energy is counted in integer microjoules (1 mWh = 3,600,000 µJ): whole mWh are what the meter shows, and the
remainder below 1 mWh is carried instead of dropped, so frequent reads never lose energy.

Registers have the width of their display, 8 integer digits of kWh with 3 decimals (``99999999.999``): one Wh
more and they wrap to zero, like a meter register (meter-api.md §3.4). That is 10^11 Wh = 10^14 mWh (§3.4 writes
"10^11 mWh" beside ``99999999.999`` kWh; the display it names is the width). Every difference of two register
values is taken modulo the width (``register_delta``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

UJ_PER_MWH = 3_600_000
REGISTER_WRAP_MWH = 10**14  # 100,000,000 kWh: 99999999.999 kWh is the last value before zero
REGISTER_WRAP_UJ = REGISTER_WRAP_MWH * UJ_PER_MWH


@dataclass(frozen=True)
class Ramp:
    """A value that moves linearly from ``start`` at ``t0`` to ``end`` at ``t1`` and stays there."""

    start: float
    end: float
    t0: float
    t1: float

    @classmethod
    def constant(cls, value: float, at: float) -> Ramp:
        """A value that stays ``value`` from time ``at`` on."""
        return cls(value, value, at, at)

    def at(self, t: float) -> float:
        """The value at time ``t`` (seconds): ``start`` before ``t0``, ``end`` from ``t1`` on."""
        if t >= self.t1:
            return self.end
        if t <= self.t0:
            return self.start
        return self.start + (self.end - self.start) * (t - self.t0) / (self.t1 - self.t0)

    def on(self, p: float, q: float) -> tuple[float, float]:
        """Values at both ends of a piece [p, q] that contains no t0/t1 inside it.

        Unlike ``at``, a step (t0 == t1) at q counts as not yet taken, so a piece ending at the step keeps
        the value before it instead of ramping towards the value after it.
        """
        if p >= self.t1:
            return self.end, self.end
        if q <= self.t0:
            return self.start, self.start
        return self.at(p), self.at(q)


def saturate(current: float, rated: float) -> float:
    """The reading of a current beyond the rating saturates at the rated value."""
    return max(-rated, min(rated, current))


def integrate(current: Ramp, voltage: Ramp, rated: float, ta: float, tb: float) -> tuple[float, float]:
    """Import and export energy in joules between ta and tb, exact for linear ramps.

    The interval is cut where a ramp ends, where the current saturates, and where current or voltage
    crosses zero; on each piece U and I are linear and P has one sign, so the integral is a closed form.
    """
    if tb <= ta:
        return 0.0, 0.0
    if current.t1 <= ta and voltage.t1 <= ta:  # the usual case: steady load, no ramp in progress
        power = saturate(current.end, rated) * voltage.end
        return (power * (tb - ta), 0.0) if power >= 0 else (0.0, -power * (tb - ta))
    cuts = {ta, tb}
    for ramp in (current, voltage):
        for t in (ramp.t0, ramp.t1):
            if ta < t < tb:
                cuts.add(t)
    points = sorted(cuts)
    imported = exported = 0.0
    for a, b in itertools.pairwise(points):
        inner = {a, b}
        for ramp, levels in ((current, (0.0, rated, -rated)), (voltage, (0.0,))):
            va, vb = ramp.on(a, b)
            if va == vb:
                continue
            for level in levels:
                if min(va, vb) < level < max(va, vb):
                    inner.add(a + (level - va) * (b - a) / (vb - va))
        cut = sorted(inner)
        for p, q in itertools.pairwise(cut):
            energy = _piece(current, voltage, rated, p, q)
            if energy >= 0:
                imported += energy
            else:
                exported -= energy
    return imported, exported


def _piece(current: Ramp, voltage: Ramp, rated: float, p: float, q: float) -> float:
    span = q - p
    if span <= 0:
        return 0.0
    i0, i1 = current.on(p, q)
    if abs((i0 + i1) / 2) >= rated:
        i0 = i1 = saturate((i0 + i1) / 2, rated)
    u0, u1 = voltage.on(p, q)
    # In the piece's own coordinate s in [0, 1] (no division by a span that may be tiny):
    # span * integral of (u0 + du*s)(i0 + di*s) ds
    di, du = i1 - i0, u1 - u0
    return span * (u0 * i0 + (u0 * di + i0 * du) / 2 + du * di / 3)


def joules_to_uj(joules: float) -> int:
    """Joules as whole µJ, rounded to the nearest."""
    return round(joules * 1_000_000)


def uj_to_mwh(microjoules: int) -> int:
    """Whole mWh in ``microjoules`` (truncated: the meter never shows more than it measured, meter-api.md §3.4)."""
    return microjoules // UJ_PER_MWH


def wrap_uj(microjoules: int) -> int:
    """A register value in µJ brought into the register's width (it counts on from zero after the last value)."""
    return microjoules % REGISTER_WRAP_UJ


def register_delta(before: int, after: int, width: int = REGISTER_WRAP_UJ) -> int:
    """How far a register moved from ``before`` to ``after`` (in the unit of ``width``), across a wrap too.

    Negative when it went back: a step forward of half the width or more is read as a step back (no charge comes
    near it: half the width at 1,500 A and 1,000 V takes 3.8 years). ``width``: ``REGISTER_WRAP_UJ`` for µJ,
    ``REGISTER_WRAP_MWH`` for mWh.
    """
    step = (after - before) % width
    return step - width if step >= width // 2 else step


def format_kwh(mwh: int) -> str:
    """kWh with 3 decimals (whole Wh), truncated, 8 integer digits: ``00000446.540`` (modulo the width)."""
    wh = mwh % REGISTER_WRAP_MWH // 1000
    return f"{wh // 1000:08d}.{wh % 1000:03d}"


def parse_kwh(text: str) -> int:
    """The mWh a displayed ``00000446.540`` stands for."""
    integer, _, decimals = text.partition(".")
    return (int(integer) * 1000 + int(decimals.ljust(3, "0")[:3])) * 1000
