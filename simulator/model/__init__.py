"""The pure meter model: rules, registers, faults and profiles, with no I/O and no asyncio."""

from iemdcr_twin.simulator.model.errors import Refusal, StorageError
from iemdcr_twin.simulator.model.faults import CATALOGUE, Fault
from iemdcr_twin.simulator.model.memory import Memory, NonVolatile, RamMemory, SignedRecord
from iemdcr_twin.simulator.model.meter import Meter
from iemdcr_twin.simulator.model.profiles import DEFAULT_PROFILE, PROFILES, Profile, Switches, get_profile
from iemdcr_twin.simulator.model.registers import Registers
from iemdcr_twin.simulator.model.values import GwBlock, LiveReading, PublicKey, ReceiptAnswer, UserBlock

__all__ = [
    "CATALOGUE",
    "DEFAULT_PROFILE",
    "PROFILES",
    "Fault",
    "GwBlock",
    "LiveReading",
    "Memory",
    "Meter",
    "NonVolatile",
    "Profile",
    "PublicKey",
    "RamMemory",
    "ReceiptAnswer",
    "Refusal",
    "Registers",
    "SignedRecord",
    "StorageError",
    "Switches",
    "UserBlock",
    "get_profile",
]
