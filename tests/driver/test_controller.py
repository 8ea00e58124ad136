"""Meter protocol helpers: TM formatting, metervalue parsing, retries."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest

from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.controller import (
    call_with_retry,
    eu_summer_time,
    format_meter_time,
    kwh_to_wh,
    parse_metervalue,
    split_time_status,
)
from iemdcr_twin.driver.errors import MeterError, UnexpectedBody, UnexpectedStatus
from iemdcr_twin.simulator.clock import SimClock
from tests.support.clock import record_sleeps

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def utc(text: str) -> float:
    """Epoch seconds of an ISO 8601 UTC time."""
    return datetime.fromisoformat(text + "+00:00").timestamp()


def instant_of(tm: str) -> float:
    """The instant a TM names, read by the standard library (not by our code)."""
    return datetime.strptime(tm.replace(",000", ""), "%Y-%m-%dT%H:%M:%S%z").timestamp()


def test_tm_at_offset_without_dst() -> None:
    config = DriverConfig(timezone="+0100", timezone_handle_DST=False)
    assert format_meter_time(config, NOW) == "2025-06-15T16:06:40,000+0100"


# Fix 12: TM names the true instant with the offset in force then. The C++ rule (one hour added while the host is
# in DST, `+0100` kept) wrote 2026-07-01T14:00:00,000+0100 here: 13:00 UTC, one hour off.
@pytest.mark.parametrize(
    ("instant", "tm"),
    [
        ("2026-07-01T12:00:00", "2026-07-01T14:00:00,000+0200"),  # summer
        ("2026-01-15T12:00:00", "2026-01-15T13:00:00,000+0100"),  # winter
        # March: the hour 02:00-03:00 local is skipped at 01:00 UTC
        ("2026-03-29T00:59:59", "2026-03-29T01:59:59,000+0100"),
        ("2026-03-29T01:00:00", "2026-03-29T03:00:00,000+0200"),
        # October: the hour 02:00-03:00 local comes twice, told apart by the offset
        ("2026-10-25T00:30:00", "2026-10-25T02:30:00,000+0200"),
        ("2026-10-25T00:59:59", "2026-10-25T02:59:59,000+0200"),
        ("2026-10-25T01:00:00", "2026-10-25T02:00:00,000+0100"),
        ("2026-10-25T01:30:00", "2026-10-25T02:30:00,000+0100"),
        ("2025-10-26T00:30:00", "2025-10-26T02:30:00,000+0200"),  # another year's last Sunday
        ("2025-10-26T01:30:00", "2025-10-26T02:30:00,000+0100"),
    ],
)
@pytest.mark.parametrize("zone", ["+0100", "Europe/Berlin"])
def test_tm_names_the_true_instant_with_the_offset_in_force(zone: str, instant: str, tm: str) -> None:
    config = DriverConfig(timezone=zone, timezone_handle_DST=True)
    assert format_meter_time(config, utc(instant)) == tm
    assert instant_of(tm) == utc(instant)  # the text names exactly that instant


def test_tm_repeated_hour_never_goes_back() -> None:
    """Across the October change, second by second, TM names strictly later instants (no step back)."""
    config = DriverConfig(timezone="+0100")
    start = utc("2026-10-25T00:58:00")
    instants = [instant_of(format_meter_time(config, start + second)) for second in range(240)]
    assert instants == [start + second for second in range(240)]


def test_eu_rule_switches_at_one_utc_for_every_offset() -> None:
    assert not eu_summer_time(utc("2026-03-29T00:59:59")) and eu_summer_time(utc("2026-03-29T01:00:00"))
    assert eu_summer_time(utc("2026-10-25T00:59:59")) and not eu_summer_time(utc("2026-10-25T01:00:00"))
    eastern = DriverConfig(timezone="+0200")  # e.g. Helsinki: switches at the same instant, 03:00 local
    assert format_meter_time(eastern, utc("2026-03-29T01:00:00")) == "2026-03-29T04:00:00,000+0300"


@pytest.mark.parametrize(
    ("zone", "dst", "tm"),
    [
        ("+0100", False, "2026-07-01T13:00:00,000+0100"),  # a fixed offset stays fixed
        ("+0530", False, "2026-07-01T17:30:00,000+0530"),
        ("-0230", False, "2026-07-01T09:30:00,000-0230"),
        ("Asia/Kolkata", True, "2026-07-01T17:30:00,000+0530"),  # a zone without DST
        ("UTC", True, "2026-07-01T12:00:00,000+0000"),
        ("America/New_York", True, "2026-07-01T08:00:00,000-0400"),  # its own rules, not the EU's
    ],
)
def test_tm_zone_without_dst_or_with_its_own_rules(zone: str, dst: bool, tm: str) -> None:
    config = DriverConfig(timezone=zone, timezone_handle_DST=dst)
    assert format_meter_time(config, utc("2026-07-01T12:00:00")) == tm


HOST_SCRIPT = """
from datetime import datetime
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.controller import format_meter_time
for text in ("2026-07-01T12:00:00+00:00", "2026-01-15T12:00:00+00:00"):
    print(format_meter_time(DriverConfig(), datetime.fromisoformat(text).timestamp()))
"""


@pytest.mark.e2e  # one Python process per host time zone
def test_host_time_zone_plays_no_part() -> None:
    """A UTC host (a container) signs the same TM as a Berlin host: the driver never asks the host's zone."""
    outputs = {}
    for host_zone in ("UTC", "Europe/Berlin", "America/New_York"):
        env = {**os.environ, "TZ": host_zone}
        done = subprocess.run([sys.executable, "-c", HOST_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs[host_zone] = done.stdout.split()
    assert outputs["UTC"] == ["2026-07-01T14:00:00,000+0200", "2026-01-15T13:00:00,000+0100"]
    assert outputs["Europe/Berlin"] == outputs["UTC"] == outputs["America/New_York"]


def test_split_time_status() -> None:
    assert split_time_status("2025-06-06T09:26:24,000+0100 I") == ("2025-06-06T09:26:24,000+0100", "I")
    assert split_time_status("2025-06-06T09:26:24,000+0100") == ("2025-06-06T09:26:24,000+0100", "")


@pytest.mark.parametrize(
    ("text", "wh"), [("00000446.540", 446540.0), ("1.040", 1040.0), ("0", 0.0), ("12.3456", 12345.6)]
)
def test_kwh_to_wh(text: str, wh: float) -> None:
    assert kwh_to_wh(text, "e", "WV") == wh


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "inf", 1.0, None])
def test_kwh_to_wh_rejects(bad: object) -> None:
    with pytest.raises(UnexpectedBody, match="WV"):
        kwh_to_wh(bad, "e", "WV")


def metervalue(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "MS": "1ISA0200000001",
        "TM": "2025-06-06T09:26:24,000+0100 I",
        "XT": False,
        "XC": "0x0000, 0x00000000, 0x00, 0x00",
        "I": 1,
        "U2": 400,
        "P": 400.0,
        "RD": [{}, {}, {"WV": "00000001.000"}, {"WV": "00000000.500"}],
    }
    data.update(changes)
    return data


def test_parse_metervalue() -> None:
    reading = parse_metervalue(metervalue())
    assert reading.time_status == "I" and reading.status_code.startswith("0x0000")
    assert reading.powermeter.energy_Wh_import.total == 1000.0
    assert reading.powermeter.energy_Wh_export is not None and reading.powermeter.energy_Wh_export.total == 500.0
    assert reading.powermeter.timestamp == "2025-06-06T09:26:24,000+0100"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"RD": [{}, {}]}, "RD must be a list of 4"),
        ({"RD": "x"}, "RD must be a list"),
        ({"XT": "false"}, "XT"),
        ({"I": "1"}, "I missing or not a number"),
        ({"U2": True}, "U2"),
        ({"MS": None}, "MS"),
        ({"RD": [{}, {}, [], {}]}, r"RD\[2\]"),
    ],
)
def test_parse_metervalue_rejects(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UnexpectedBody, match=message):
        parse_metervalue(metervalue(**changes))


async def test_call_with_retry_attempts_and_sleeps(clock: SimClock) -> None:
    sleeps = record_sleeps(clock)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise UnexpectedStatus("POST", "/x", 428, "")

    with pytest.raises(UnexpectedStatus):
        await call_with_retry(failing, 3, 250, clock, "x")
    assert calls == 4 and sleeps == [0.25] * 4


async def test_call_with_retry_returns_first_success(clock: SimClock) -> None:
    sleeps = record_sleeps(clock)
    results = iter([MeterError("no"), 7])

    async def flaky() -> int:
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return value

    assert await call_with_retry(flaky, 1, 200, clock, "x") == 7
    assert sleeps == [0.2]
