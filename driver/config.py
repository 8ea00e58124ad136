"""Driver configuration: the EVerest manifest's keys, defaults and ranges, plus Python-only settings."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from iemdcr_twin.driver.clock import Clock, RealClock

_TIMEZONE = re.compile(r"[+-]([01][0-9]|2[0-3])[0-5][0-9]\Z")  # ASCII digits to the very end (no "\n")


def host_is_dst(epoch: float) -> bool:
    """Whether the host's local time zone is in daylight saving time at `epoch` (what the C++ driver asks)."""
    return time.localtime(epoch).tm_isdst > 0


@dataclass(frozen=True)
class DriverConfig:
    """Validated settings; construction fails with a ValueError that names the offending key."""

    ip_address: str = "192.168.60.12"
    port_http: int = 80
    timezone: str = "+0100"
    timezone_handle_DST: bool = True
    datetime_resync_interval: int = 2
    resilience_initial_connection_retry_delay: int = 10000
    resilience_transaction_request_retries: int = 3
    resilience_transaction_request_retry_delay: int = 250
    CT: str = "EVSEID"
    CI: str = "1234"
    TT_initial: str = ""
    US: bool = False
    # Python-only settings.
    request_timeout_s: float = 5.0
    clock: Clock = field(default_factory=RealClock, compare=False, repr=False)
    dst_probe: Callable[[float], bool] = field(default=host_is_dst, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_str(self, "ip_address", allow_empty=False)
        if not (self.ip_address.isascii() and self.ip_address.isprintable()) or " " in self.ip_address:
            raise ValueError(f"ip_address: {self.ip_address!r} must be an address or host name in printable ASCII")
        _check_int(self, "port_http", 0, 65535)
        _check_str(self, "timezone", allow_empty=False)
        if not _TIMEZONE.match(self.timezone):
            raise ValueError(f"timezone: {self.timezone!r} is not an offset of the form ±HHMM, e.g. +0100")
        _check_bool(self, "timezone_handle_DST")
        _check_int(self, "datetime_resync_interval", 1, 24)
        _check_int(self, "resilience_initial_connection_retry_delay", 1000, 65535)
        _check_int(self, "resilience_transaction_request_retries", 0, 5)
        _check_int(self, "resilience_transaction_request_retry_delay", 200, 1000)
        _check_str(self, "CT", allow_empty=False)
        _check_str(self, "CI", allow_empty=False)
        _check_str(self, "TT_initial", allow_empty=True)
        _check_bool(self, "US")
        timeout = self.request_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"request_timeout_s: must be a number of seconds > 0, got {timeout!r}")
        if not (callable(getattr(self.clock, "now", None)) and callable(getattr(self.clock, "sleep", None))):
            raise ValueError("clock: must have now() and async sleep(seconds)")

    @property
    def base_url(self) -> str:
        host = f"[{self.ip_address}]" if ":" in self.ip_address else self.ip_address
        return f"http://{host}:{self.port_http}"

    @property
    def timezone_offset_s(self) -> int:
        sign = -1 if self.timezone[0] == "-" else 1
        return sign * (int(self.timezone[1:3]) * 3600 + int(self.timezone[3:5]) * 60)

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> DriverConfig:
        """Build a config from `http://HOST:PORT` (the CLI's and scenario runner's way to name a meter)."""
        if not isinstance(url, str) or not (url.isascii() and url.isprintable()):  # urlsplit drops "\n" and tabs
            raise ValueError(f"url: {url!r} must be printable ASCII, e.g. http://192.168.60.12:80")
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


def _check_bool(config: DriverConfig, key: str) -> None:
    value = getattr(config, key)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: must be true or false, got {value!r}")
