"""Fleet files: a YAML list of meters (port, serial, profile, switches) for ``iemdcr-sim serve --fleet``.

Labs with mixed meters (a 125 A and a 1000 A meter, one with old firmware switches) describe them once in a
file instead of many flags. Every mistake is reported with the file and the key, before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from iemdcr_twin.simulator.fleet import MeterSpec
from iemdcr_twin.simulator.model import PROFILES, Switches
from iemdcr_twin.simulator.model.profiles import check_serial

METER_KEYS = {"port", "serial", "profile", "switches"}
MAX_METERS = 10_000


class FleetFileError(ValueError):
    """A fleet file that cannot be used; the message names the file and the key."""


def load_fleet(path: Path, default_profile: str, default_switches: dict[str, Any] | None = None) -> list[MeterSpec]:
    """Read and check a fleet file: either a list of meters or a mapping with the single key ``meters``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FleetFileError(f"{path}: not valid YAML ({_one_line(exc)})") from None
    return parse_fleet(data, str(path), default_profile, default_switches or {})


def parse_fleet(data: Any, source: str, default_profile: str, default_switches: dict[str, Any]) -> list[MeterSpec]:
    if isinstance(data, dict):
        extra = sorted(set(data) - {"meters"}, key=str)
        if extra:
            raise FleetFileError(f"{source}: unknown key {extra[0]!r}; a fleet file holds 'meters'")
        data = data.get("meters")
    if not isinstance(data, list) or not data:
        raise FleetFileError(f"{source}: meters must be a non-empty list of meters")
    if len(data) > MAX_METERS:
        raise FleetFileError(f"{source}: at most {MAX_METERS} meters")
    specs = [
        _meter(entry, f"{source}: meters[{index}]", default_profile, default_switches)
        for index, entry in enumerate(data)
    ]
    _check_unique(specs, source)
    return specs


def _meter(entry: Any, where: str, default_profile: str, default_switches: dict[str, Any]) -> MeterSpec:
    if not isinstance(entry, dict):
        raise FleetFileError(f"{where}: must be a mapping with {', '.join(sorted(METER_KEYS))}")
    unknown = sorted(set(entry) - METER_KEYS, key=str)
    if unknown:
        raise FleetFileError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(METER_KEYS))}")
    port = entry.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise FleetFileError(f"{where}.port: must be a port number from 0 to 65535 (0 picks a free port)")
    profile = entry.get("profile", default_profile)
    if profile not in PROFILES:
        raise FleetFileError(f"{where}.profile: {profile!r} is not one of {', '.join(sorted(PROFILES))}")
    serial = entry.get("serial")
    if serial is not None:
        if not isinstance(serial, str):
            raise FleetFileError(f"{where}.serial: must be a string such as '1ISA0200000001' (quote it)")
        try:
            check_serial(serial)
        except ValueError as exc:
            raise FleetFileError(f"{where}.serial: {exc}") from None
    switches = entry.get("switches", {})
    if not isinstance(switches, dict):
        raise FleetFileError(f"{where}.switches: must be a mapping of switch names to values")
    merged = {**default_switches, **switches}
    try:
        Switches().updated(merged)
    except ValueError as exc:
        raise FleetFileError(f"{where}.switches: {exc}") from None
    return MeterSpec(port=port, profile=profile, serial=serial, switches=merged)


def _check_unique(specs: list[MeterSpec], source: str) -> None:
    ports: dict[int, int] = {}
    serials: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.port and spec.port in ports:
            raise FleetFileError(
                f"{source}: meters[{index}].port: {spec.port} is also used by meters[{ports[spec.port]}]"
            )
        ports[spec.port] = index
        if spec.serial is not None and spec.serial in serials:
            raise FleetFileError(
                f"{source}: meters[{index}].serial: {spec.serial} is also used by meters[{serials[spec.serial]}]"
            )
        if spec.serial is not None:
            serials[spec.serial] = index


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
