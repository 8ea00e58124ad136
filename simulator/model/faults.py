"""The twin's fault catalogue (meter-api.md §3.8): bit patterns, OCMF status and what each fault does."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass


class MidTransaction(enum.Enum):
    """What a fault raised during a running transaction does to it."""

    ABORT = "ends the transaction with reason A"
    CLOCK_UNKNOWN = "time status becomes U until time is written again; the transaction goes on"
    CANNOT_SIGN = "the transaction stays open and TX E answers 503 until the fault clears"


@dataclass(frozen=True)
class Fault:
    """One fault of the catalogue (meter-api.md §3.8): its XC fields, the ST and EF it shows, whether it blocks
    receipts (503 ``meter_error``), what it does to a running transaction, and its severity (higher wins)."""

    name: str
    description: str
    xc: tuple[int, int, int, int]
    st: str
    ef: str
    blocks_receipts: bool
    mid_transaction: MidTransaction
    severity: int

    def as_dict(self) -> dict[str, object]:
        """The catalogue entry as the control API lists it (``GET /api/faults``, control-api.md)."""
        return {
            "name": self.name,
            "description": self.description,
            "XC": format_xc(self.xc),
            "ST": self.st,
            "EF": self.ef,
            "blocks_receipts": self.blocks_receipts,
            "mid_transaction": self.mid_transaction.value,
        }


CATALOGUE: tuple[Fault, ...] = (
    Fault(
        "sensor_unit_fault",
        "the measuring unit reports a fault",
        (0x0001, 0, 0, 0),
        "F",
        "E",
        True,
        MidTransaction.ABORT,
        4,
    ),
    Fault(
        "voltage_out_of_range",
        "the circuit voltage is outside the meter's range",
        (0x0002, 0, 0, 0),
        "O",
        "E",
        True,
        MidTransaction.ABORT,
        3,
    ),
    Fault(
        "tamper_detected",
        "the meter's seal or housing was tampered with",
        (0x0004, 0, 0, 0),
        "M",
        "E",
        True,
        MidTransaction.ABORT,
        5,
    ),
    Fault(
        "clock_lost",
        "the real-time clock lost its time",
        (0x0008, 0x00000800, 0, 0),
        "G",
        "t",
        False,
        MidTransaction.CLOCK_UNKNOWN,
        1,
    ),
    Fault(
        "signature_unit_fault",
        "the signature unit cannot sign",
        (0x0010, 0, 0, 0),
        "E",
        "",
        True,
        MidTransaction.CANNOT_SIGN,
        2,
    ),
)
BY_NAME: dict[str, Fault] = {fault.name: fault for fault in CATALOGUE}
HEALTHY_XC = "0x0000, 0x00000000, 0x00, 0x00"


def format_xc(xc: tuple[int, int, int, int]) -> str:
    """XC as the meter shows it: ``0x0000, 0x00000000, 0x00, 0x00`` (meter-api.md §3.8)."""
    return f"0x{xc[0]:04X}, 0x{xc[1]:08X}, 0x{xc[2]:02X}, 0x{xc[3]:02X}"


@functools.lru_cache(maxsize=256)
def combined_xc(active: frozenset[str]) -> str:
    """OR the XC fields of every active fault."""
    fields = [0, 0, 0, 0]
    for fault in CATALOGUE:
        if fault.name in active:
            fields = [a | b for a, b in zip(fields, fault.xc, strict=True)]
    return format_xc((fields[0], fields[1], fields[2], fields[3]))


@functools.lru_cache(maxsize=256)
def worst(active: frozenset[str]) -> Fault | None:
    """The most severe active fault: it decides ST and EF."""
    candidates = [fault for fault in CATALOGUE if fault.name in active]
    return max(candidates, key=lambda fault: fault.severity) if candidates else None


@functools.lru_cache(maxsize=256)
def fault_bits(active: frozenset[str]) -> int:
    """XS bits 8+ : one per active fault in catalogue order."""
    bits = 0
    for index, fault in enumerate(CATALOGUE):
        if fault.name in active:
            bits |= 1 << (8 + index)
    return bits
