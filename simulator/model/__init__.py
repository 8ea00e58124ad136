"""The pure meter model: rules, registers, faults and profiles, with no I/O and no asyncio."""

from .errors import Refusal
from .faults import CATALOGUE, Fault
from .memory import Memory, NonVolatile, RamMemory, SignedRecord
from .meter import Meter
from .profiles import DEFAULT_PROFILE, PROFILES, Profile, Switches, get_profile

__all__ = [
    "CATALOGUE",
    "DEFAULT_PROFILE",
    "PROFILES",
    "Fault",
    "Memory",
    "Meter",
    "NonVolatile",
    "Profile",
    "RamMemory",
    "Refusal",
    "SignedRecord",
    "Switches",
    "get_profile",
]
