"""Config keys, defaults and ranges of the EVerest manifest; errors name the key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from iemdcr_twin.driver.config import DriverConfig


def test_defaults_match_the_manifest() -> None:
    config = DriverConfig()
    assert (config.ip_address, config.port_http, config.timezone) == ("192.168.60.12", 80, "+0100")
    assert config.timezone_handle_DST is True and config.datetime_resync_interval == 2
    assert config.resilience_initial_connection_retry_delay == 10000
    assert config.resilience_transaction_request_retries == 3
    assert config.resilience_transaction_request_retry_delay == 250
    assert (config.CT, config.CI, config.TT_initial, config.US) == ("EVSEID", "1234", "", False)
    assert config.request_timeout_s == 5.0
    assert config.base_url == "http://192.168.60.12:80"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ip_address", ""),
        ("port_http", 65536),
        ("port_http", -1),
        ("port_http", "80"),
        ("timezone", "+01:00"),
        ("timezone", "0100"),
        ("timezone", "+2400"),
        ("timezone", "+0160"),
        ("timezone_handle_DST", "yes"),
        ("datetime_resync_interval", 0),
        ("datetime_resync_interval", 25),
        ("datetime_resync_interval", True),
        ("resilience_initial_connection_retry_delay", 999),
        ("resilience_initial_connection_retry_delay", 65536),
        ("resilience_transaction_request_retries", 6),
        ("resilience_transaction_request_retries", -1),
        ("resilience_transaction_request_retry_delay", 199),
        ("resilience_transaction_request_retry_delay", 1001),
        ("CT", ""),
        ("CI", ""),
        ("CI", 1234),
        ("TT_initial", None),
        ("US", 1),
        ("timezone", "Europe/Nowhere"),
        ("timezone", "../etc/passwd"),
        ("timezone", "/etc/localtime"),
        ("timezone", "Europe/Berlin\n"),
        ("CT", "EVSEID\n"),
        ("CI", "DE*ISA*E0001\n"),
        ("CI", "１２３４"),
        ("TT_initial", "0,30 EUR/kWh\n"),
        ("signature_timeout_ms", 249),
        ("signature_timeout_ms", 600001),
        ("signature_timeout_ms", "10000"),
        ("request_timeout_s", 0),
        ("request_timeout_s", 3600.5),
        ("request_timeout_s", float("inf")),
        ("request_timeout_s", "5"),
    ],
)
def test_invalid_values_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(key)}:"):
        DriverConfig(**{key: value})


@pytest.mark.parametrize("tz", ["+0000", "-1200", "+1345", "+0530", "Europe/Berlin", "UTC", "America/Argentina/Salta"])
def test_valid_timezones(tz: str) -> None:
    assert DriverConfig(timezone=tz).timezone == tz


ARABIC_INDIC = "".join(chr(0x0660 + int(digit)) for digit in "0100")  # ٠١٠٠
FULLWIDTH = "".join(chr(0xFF10 + int(digit)) for digit in "0100")  # ０１００


@pytest.mark.parametrize(
    "tz",
    [
        "+0\u0661" + "00",
        "+01" + "\uff10\uff10",
        "+" + ARABIC_INDIC,
        "+" + FULLWIDTH,
        "+01" + FULLWIDTH[:2],
        "+0100\n",
        "+0100\r\n",
        " +0100",
        "+0100 ",
    ],
)
def test_timezone_needs_ascii_digits_and_a_full_match(tz: str) -> None:
    """Python's \\d matches any Unicode digit and `$` allows a trailing newline: neither gets through."""
    with pytest.raises(ValueError, match=r"^timezone: .*±HHMM"):
        DriverConfig(timezone=tz)


def test_signature_timeout_default() -> None:
    assert DriverConfig().signature_timeout_ms == 10000


def test_bounds_are_inclusive() -> None:
    config = DriverConfig(
        port_http=0,
        datetime_resync_interval=24,
        resilience_initial_connection_retry_delay=1000,
        resilience_transaction_request_retries=0,
        resilience_transaction_request_retry_delay=1000,
    )
    assert config.datetime_resync_interval == 24


def test_timezone_offset_seconds() -> None:
    assert DriverConfig(timezone="-0230").timezone_offset_s == -9000
    assert DriverConfig(timezone="+0100").timezone_offset_s == 3600
    assert DriverConfig(timezone="+0100").zone is None
    assert str(DriverConfig(timezone="Europe/Berlin").zone) == "Europe/Berlin"


def test_from_url() -> None:
    config = DriverConfig.from_url("http://127.0.0.1:8080", CI="abc")
    assert (config.ip_address, config.port_http, config.CI) == ("127.0.0.1", 8080, "abc")
    assert DriverConfig.from_url("http://meter.local").port_http == 80
    assert DriverConfig.from_url("http://[::1]:81").base_url == "http://[::1]:81"


@pytest.mark.parametrize(
    "url",
    [
        "https://x:1",
        "meter:80",
        "http://x:1/counter",
        "http://x:99999",
        "http://:80",
        "http://127.0.0.1:80\n",  # urlsplit would silently drop the newline
        "http://127.0.0.1:８０",
        "http://1２7.0.0.1:80",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"^url:"):
        DriverConfig.from_url(url)


def test_clock_must_have_now_and_sleep() -> None:
    with pytest.raises(ValueError, match=r"^clock:"):
        DriverConfig(clock=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("tz", ["localtime", "posixrules", "Factory", "LOCALTIME"])
def test_host_dependent_zone_names_are_refused(tz: str) -> None:
    """`localtime` and `posixrules` are whatever the host set up (its own zone), `Factory` is no zone at all: the
    host's zone plays no part in the driver, so these names are refused even where the zone database has them."""
    with pytest.raises(ValueError, match=r"^timezone: .*host"):
        DriverConfig(timezone=tz)
