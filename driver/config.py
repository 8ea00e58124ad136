"""Driver configuration: the EVerest manifest's keys, defaults and ranges, plus Python-only settings."""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from urllib.parse import urlsplit

from iemdcr_twin.driver.clock import Clock, RealClock

# Every check of text input uses ASCII classes and full matches (re.fullmatch, re.ASCII): Python's \d matches any
# Unicode digit (and int() converts them), and `$` lets a trailing newline through.
_OFFSET = re.compile(r"[+-](?:[01][0-9]|2[0-3])[0-5][0-9]", re.ASCII)
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*", re.ASCII)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*", re.ASCII)
# The longest per-request timeout: an hour. A meter answers in well under a second; a longer wait is a typo, and
# an unbounded one (1e9 s, inf) would make a hung request indistinguishable from a hung driver.
REQUEST_TIMEOUT_MAX_S = 3600

# Files of the zone database that are no fixed region: `localtime` and `posixrules` are whatever zone the host was
# set up with, `Factory` is a placeholder ("-00"). zoneinfo loads them, but the host's zone must play no part.
_HOST_ZONE_NAMES = frozenset({"localtime", "posixrules", "factory"})


@dataclass(frozen=True)
class DriverConfig:
    """The driver's settings (driver.md §1): the keys, defaults and ranges of the C++ module's `manifest.yaml`.

    Construction fails with a ValueError that names the offending key, e.g. `port_http: 70000 is outside ...`.
    """

    ip_address: str = "192.168.60.12"
    port_http: int = 80
    timezone: str = "+0100"  # ±HHMM of normal time, or an IANA zone name
    timezone_handle_DST: bool = True
    datetime_resync_interval: int = 2  # hours
    resilience_initial_connection_retry_delay: int = 10000  # ms
    resilience_transaction_request_retries: int = 3
    resilience_transaction_request_retry_delay: int = 250  # ms
    CT: str = "EVSEID"
    CI: str = "1234"
    TT_initial: str = ""
    US: bool = False
    # Python-only settings.
    signature_timeout_ms: int = 10000
    request_timeout_s: float = 5.0  # per HTTP request, all of it (fix 5); above 0, at most REQUEST_TIMEOUT_MAX_S
    clock: Clock = field(default_factory=RealClock, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_str(self, "ip_address", allow_empty=False)
        if not (self.ip_address.isascii() and self.ip_address.isprintable()) or " " in self.ip_address:
            raise ValueError(f"ip_address: {self.ip_address!r} must be an address or host name in printable ASCII")
        _check_int(self, "port_http", 0, 65535)
        _check_str(self, "timezone", allow_empty=False)
        _parse_timezone(self.timezone)
        _check_bool(self, "timezone_handle_DST")
        _check_int(self, "datetime_resync_interval", 1, 24)
        _check_int(self, "resilience_initial_connection_retry_delay", 1000, 65535)
        _check_int(self, "resilience_transaction_request_retries", 0, 5)
        _check_int(self, "resilience_transaction_request_retry_delay", 200, 1000)
        for key in ("CT", "CI"):
            _check_str(self, key, allow_empty=False)
            _check_printable_ascii(self, key)
        _check_str(self, "TT_initial", allow_empty=True)
        if not self.TT_initial.isprintable():
            raise ValueError(
                f"TT_initial: must not contain control characters (line breaks...), got {self.TT_initial!r}"
            )
        _check_bool(self, "US")
        _check_int(self, "signature_timeout_ms", 250, 600000)
        timeout = self.request_timeout_s
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= REQUEST_TIMEOUT_MAX_S
        ):
            raise ValueError(
                f"request_timeout_s: must be a number of seconds above 0 and at most {REQUEST_TIMEOUT_MAX_S}, "
                f"got {timeout!r}"
            )
        if not (callable(getattr(self.clock, "now", None)) and callable(getattr(self.clock, "sleep", None))):
            raise ValueError("clock: must have now() and async sleep(seconds)")

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` of the meter API; an IPv6 host goes in brackets."""
        host = f"[{self.ip_address}]" if ":" in self.ip_address else self.ip_address
        return f"http://{host}:{self.port_http}"

    @property
    def zone(self) -> tzinfo | None:
        """The IANA zone named by `timezone`, or None when `timezone` is a `±HHMM` offset."""
        return _parse_timezone(self.timezone)

    @property
    def timezone_offset_s(self) -> int:
        """The `±HHMM` offset in seconds (normal time); ValueError when `timezone` is an IANA zone name."""
        if self.zone is not None:
            raise ValueError(f"timezone: {self.timezone!r} is a zone name, not a fixed offset")
        sign = -1 if self.timezone[0] == "-" else 1
        return sign * (int(self.timezone[1:3]) * 3600 + int(self.timezone[3:5]) * 60)

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> DriverConfig:
        """Build a config from `http://HOST:PORT` (the CLI's and scenario runner's way to name a meter).

        ValueError starting `url:` for anything else (a path, a query, a bad port, non-ASCII text).
        """
        if not isinstance(url, str) or not _PRINTABLE_ASCII.fullmatch(url):
            raise ValueError(f"url: {url!r} must be printable ASCII (no line breaks; an IDN host in its xn-- form)")
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url: {url!r} is not of the form http://HOST:PORT")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"url: {url!r} must not have a path; the driver adds /counter/v1/ocmf/...")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"url: {url!r} has an invalid port") from None
        return cls(ip_address=parts.hostname, port_http=port if port is not None else 80, **settings)


@functools.lru_cache(maxsize=64)
def _parse_timezone(text: str) -> tzinfo | None:
    """None for a `±HHMM` offset, the ZoneInfo for an IANA zone name; ValueError naming the key otherwise."""
    if _OFFSET.fullmatch(text):
        return None
    if text.casefold() in _HOST_ZONE_NAMES:
        raise ValueError(
            f"timezone: {text!r} is the host's own zone or no zone at all, and the host's zone plays no part in "
            "the driver; give an offset of the form ±HHMM (e.g. +0100) or an IANA zone name (e.g. Europe/Berlin)"
        )
    if _ZONE_NAME.fullmatch(text) and ".." not in text:
        try:
            return zoneinfo.ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ValueError(
        f"timezone: {text!r} is neither an offset of the form ±HHMM (ASCII digits, e.g. +0100) "
        "nor a known IANA zone name (e.g. Europe/Berlin)"
    )


def _check_int(config: DriverConfig, key: str, low: int, high: int) -> None:
    value = getattr(config, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{key}: {value} is outside the allowed range {low}..{high}")


def _check_str(config: DriverConfig, key: str, *, allow_empty: bool) -> None:
    value = getattr(config, key)
    if not isinstance(value, str):
        raise ValueError(f"{key}: must be a string, got {value!r}")
    if not allow_empty and not value:
        raise ValueError(f"{key}: must not be empty")


def _check_printable_ascii(config: DriverConfig, key: str) -> None:
    value = getattr(config, key)
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise ValueError(f"{key}: must be printable ASCII (no line breaks or other characters), got {value!r}")


def _check_bool(config: DriverConfig, key: str) -> None:
    value = getattr(config, key)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: must be true or false, got {value!r}")
