"""The meter's TM time format: ``YYYY-MM-DDTHH:MM:SS,mmm±HHMM`` (plus a status letter when sent out)."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from iemdcr_twin.simulator.model.errors import bad_request

# ASCII digits and a full match: \d would take any Unicode digit and $ a trailing newline.
_TM = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{3})([+-])([0-9]{2})([0-9]{2})"
)
_ZONES: dict[int, timezone] = {}
# The times a meter takes as TM and shows, in UTC: the years 2 to 9998, so that every one of them is a valid
# date at any UTC offset. A written time is refused outside (parse_tm); a meter time that ran past the end is
# shown as the last millisecond (format_tm; docs/fidelity.md). The simulation clock stays inside too (clock.py).
TM_FIRST_S = datetime(2, 1, 1, tzinfo=UTC).timestamp()
TM_END_S = datetime(9999, 1, 1, tzinfo=UTC).timestamp()  # the first time after the range


def parse_tm(text: object, key: str = "TM") -> tuple[float, int]:
    """Return (epoch seconds, UTC offset in minutes) or refuse with 400 ``bad_time``."""
    if not isinstance(text, str):
        raise bad_request("bad_time", f"{key} must be a string like 2025-06-06T09:26:24,000+0100")
    match = _TM.fullmatch(text)
    if match is None:
        raise bad_request("bad_time", f"{key} must look like 2025-06-06T09:26:24,000+0100, got {text[:40]!r}")
    year, month, day, hour, minute, second, millis, sign, off_h, off_m = match.groups()
    if int(off_h) > 14 or int(off_m) > 59:
        raise bad_request("bad_time", f"{key} has an impossible UTC offset {sign}{off_h}{off_m}")
    offset = (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int(millis) * 1000,
            tzinfo=_zone(offset),
        )
    except ValueError as exc:
        raise bad_request("bad_time", f"{key} is not a valid date and time: {exc}") from None
    epoch = local.timestamp()
    # The meter must be able to show this time (and run on from it) at any offset: stay clear of the
    # calendar's ends, where formatting would fail after the state had already changed.
    if not TM_FIRST_S <= epoch < TM_END_S:
        raise bad_request("bad_time", f"{key} is outside the years the meter can show (0002 to 9998 in UTC)")
    return epoch, offset


def format_tm(epoch: float, offset_minutes: int) -> str:
    """Format epoch seconds at a UTC offset, milliseconds truncated. Never raises: a time outside the range a
    meter shows (``TM_FIRST_S`` to ``TM_END_S``) is shown as the range's first or last millisecond."""
    if not TM_FIRST_S <= epoch < TM_END_S:
        second, millis = (int(TM_FIRST_S), 0) if epoch < TM_FIRST_S else (int(TM_END_S) - 1, 999)
        return f"{_second_prefix(second, offset_minutes)},{millis:03d}{_offset_text(offset_minutes)}"
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)  # rounded as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    prefix = _second_prefix(int(whole), offset_minutes)
    return f"{prefix},{micros // 1000:03d}{_offset_text(offset_minutes)}"


@functools.lru_cache(maxsize=4096)
def _second_prefix(seconds: int, offset_minutes: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole second (cached: meters are read many times a second). The year has
    four digits before 1000 too (``%Y`` gives ``100``, not ``0100``, on glibc)."""
    moment = datetime.fromtimestamp(seconds, _zone(offset_minutes))
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"


@functools.lru_cache(maxsize=256)
def _offset_text(offset_minutes: int) -> str:
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{'+' if offset_minutes >= 0 else '-'}{hours:02d}{minutes:02d}"


def _zone(offset_minutes: int) -> timezone:
    zone = _ZONES.get(offset_minutes)
    if zone is None:
        zone = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
        _ZONES[offset_minutes] = zone
    return zone
