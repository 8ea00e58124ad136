"""Meter identity profiles and firmware switches (meter-api.md §5 and §6)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from iemdcr_twin.asciinum import parse_float, parse_int

SERIAL = re.compile(r"1ISA[0-9]{10}")  # full match, ASCII digits: the serial goes into JSON and OCMF as is


@dataclass(frozen=True)
class Switches:
    """Firmware behaviours seen in the field, settable at start and at run time."""

    v1_transaction: bool = True
    time_status_after_set: str = "I"
    activation_threshold_A: float = 1.0
    signature_delay_ms: int = 0
    signature_encoding: str = "der"
    require_gw_for_transaction: bool = True
    response_latency_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Every switch by name (meter-api.md §6), as the control API shows them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def updated(self, changes: dict[str, Any]) -> Switches:
        """Validate JSON-typed changes and return a new Switches; ValueError names the bad key."""
        checked = {key: _check_switch(key, value) for key, value in changes.items()}
        return replace(self, **checked)

    def updated_from_text(self, assignments: list[str]) -> Switches:
        """Apply ``key=value`` strings from the command line."""
        changes: dict[str, Any] = {}
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep:
                raise ValueError(f"--set {assignment!r}: expected key=value")
            changes[key] = _from_text(key, raw)
        return self.updated(changes)


# The switches' rules (meter-api.md §6), also the JSON Schema of every switches object (simulator/schemas.py).
BOOL_SWITCHES = ("v1_transaction", "require_gw_for_transaction")
INT_SWITCHES = ("signature_delay_ms", "response_latency_ms")
MAX_SWITCH_MS = 600_000
SWITCH_CHOICES: dict[str, tuple[str, ...]] = {"time_status_after_set": ("I", "S"), "signature_encoding": ("der", "raw")}
MAX_ACTIVATION_THRESHOLD_A = 10_000
SWITCH_NAMES = tuple(f.name for f in fields(Switches))


def _check_switch(key: str, value: Any) -> Any:
    if key not in SWITCH_NAMES:
        raise ValueError(f"unknown switch {key!r}; known: {', '.join(SWITCH_NAMES)}")
    if key in BOOL_SWITCHES:
        if not isinstance(value, bool):
            raise ValueError(f"switch {key} must be true or false")
        return value
    if key in INT_SWITCHES:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SWITCH_MS:
            raise ValueError(f"switch {key} must be an integer from 0 to {MAX_SWITCH_MS}")
        return value
    if key in SWITCH_CHOICES:
        if value not in SWITCH_CHOICES[key]:
            raise ValueError(f"switch {key} must be one of {', '.join(SWITCH_CHOICES[key])}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_ACTIVATION_THRESHOLD_A:
        raise ValueError(f"switch {key} must be a number from 0 to {MAX_ACTIVATION_THRESHOLD_A}")
    return float(value)


def _from_text(key: str, raw: str) -> Any:
    if key in BOOL_SWITCHES:
        lowered = raw.lower()
        if lowered in ("true", "on", "1", "yes"):
            return True
        if lowered in ("false", "off", "0", "no"):
            return False
        raise ValueError(f"switch {key} must be true or false, got {raw!r}")
    if key in INT_SWITCHES:
        try:
            return parse_int(raw)
        except ValueError:
            raise ValueError(f"switch {key} must be an integer, got {raw!r}") from None
    if key == "activation_threshold_A":
        try:
            return parse_float(raw)
        except ValueError:
            raise ValueError(f"switch {key} must be a number, got {raw!r}") from None
    return raw


@dataclass(frozen=True)
class Profile:
    """A meter model (meter-api.md §5): MM, the default MS, the rated current in A, GV (firmware), MV, and the
    first PG number."""

    name: str
    MM: str
    default_serial: str
    rated_current_A: float
    GV: str = "DU-02.00.12_SU-02.00.08"
    MV: str = "Isabellenhuette"
    first_pagination: int = 1

    @property
    def GI(self) -> str:
        """The gateway identification: ``<MV> <MM>``."""
        return f"{self.MV} {self.MM}"

    def serial_plus(self, n: int) -> str:
        """The default serial with n added to its 10-digit number (``--meters N``)."""
        number = int(self.default_serial[4:]) + n
        if number >= 10**10:
            raise ValueError(f"serial number overflow for profile {self.name}")
        return f"1ISA{number:010d}"


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("iem-dcr-125", "IEM-DCR-125-1000-32-00-006-B_000", "1ISA0200000001", 125.0),
        Profile("iem-dcr-1000", "IEM-DCR-1000-1000-32-00-006-B_000", "1ISA0210000001", 1000.0),
        Profile("iem-dcr-1500", "IEM-DCR-1500-1000-32-00-006-B_000", "1ISA0215000001", 1500.0),
    )
}
DEFAULT_PROFILE = "iem-dcr-125"


def get_profile(name: str) -> Profile:
    """The profile named ``name`` (meter-api.md §5); ``ValueError`` names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def check_serial(serial: str) -> str:
    """``serial`` when it is ``1ISA`` and 10 ASCII digits (meter-api.md §5), else ``ValueError`` naming it."""
    if not isinstance(serial, str) or not SERIAL.fullmatch(serial):
        raise ValueError(f"serial {serial!r} must be 1ISA followed by 10 digits (ASCII digits 0-9)")
    return serial
