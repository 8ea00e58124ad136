"""Meter protocol helpers: TM formatting, metervalue parsing, retries."""

from __future__ import annotations

import pytest

from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.controller import (
    call_with_retry,
    format_meter_time,
    kwh_to_wh,
    parse_metervalue,
    split_time_status,
)
from iemdcr_twin.driver.errors import MeterError, UnexpectedBody, UnexpectedStatus

from .vclock import VirtualClock

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def test_tm_at_offset_without_dst() -> None:
    config = DriverConfig(timezone="+0100", timezone_handle_DST=False)
    assert format_meter_time(config, NOW) == "2025-06-15T16:06:40,000+0100"


def test_tm_adds_an_hour_during_host_dst() -> None:
    config = DriverConfig(timezone="+0100", dst_probe=lambda _: True)
    assert format_meter_time(config, NOW) == "2025-06-15T17:06:40,000+0100"
    winter = DriverConfig(timezone="+0100", dst_probe=lambda _: False)
    assert format_meter_time(winter, NOW) == "2025-06-15T16:06:40,000+0100"
    ignored = DriverConfig(timezone="+0100", timezone_handle_DST=False, dst_probe=lambda _: True)
    assert format_meter_time(ignored, NOW) == "2025-06-15T16:06:40,000+0100"


def test_tm_negative_offset_crosses_midnight() -> None:
    config = DriverConfig(timezone="-1200", timezone_handle_DST=False)
    assert format_meter_time(config, 1_750_032_000.0) == "2025-06-15T12:00:00,000-1200"


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


async def test_call_with_retry_attempts_and_sleeps(clock: VirtualClock) -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise UnexpectedStatus("POST", "/x", 428, "")

    with pytest.raises(UnexpectedStatus):
        await call_with_retry(failing, 3, 250, clock, "x")
    assert calls == 4 and clock.sleeps == [0.25] * 4


async def test_call_with_retry_returns_first_success(clock: VirtualClock) -> None:
    results = iter([MeterError("no"), 7])

    async def flaky() -> int:
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return value

    assert await call_with_retry(flaky, 1, 200, clock, "x") == 7
    assert clock.sleeps == [0.2]
