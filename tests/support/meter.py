"""The meter model for tests: what a charger writes, a seeded meter, one whole transaction, pyocmf's verdicts.

Pure (no I/O, no event loop), like the model: time comes from a ``FakeTime`` or a ``SimClock`` the test moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from pyocmf import OCMF
from pyocmf.exceptions import PyOCMFError

from iemdcr_twin.simulator.meter_api import metervalue_body
from iemdcr_twin.simulator.model import (
    Memory,
    Meter,
    NonVolatile,
    RamMemory,
    SignedRecord,
    StorageError,
    Switches,
    UserBlock,
    get_profile,
)
from iemdcr_twin.simulator.ocmf import Signer

SERIAL = "1ISA0200000001"
GW: dict[str, Any] = {"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"}
USER: dict[str, Any] = {
    "IS": True,
    "IL": "VERIFIED",
    "IF": ["RFID_PLAIN"],
    "IT": "ISO14443",
    "ID": "04A1B2C3",
    "US": True,
}
TARIFF: dict[str, Any] = {"TT": "0.49 EUR/kWh"}
HEALTHY_XC = "0x0000, 0x00000000, 0x00, 0x00"

# The IEM-DCR payload key order (ocmf.md §3).
PAYLOAD_KEYS = ["FV", "GI", "GS", "GV", "MV", "MM", "MS", "CT", "CI", "IS", "IL", "IF", "IT", "ID", "PG", "TT", "RD"]


class Advances(Protocol):
    """A time a test moves by hand: ``FakeTime`` or a virtual ``SimClock``."""

    def advance(self, seconds: float) -> None: ...


class FullMemory(RamMemory):
    """RAM memory whose writes fail with ``StorageError`` while ``full`` is set, like a full disk."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.refused = 0

    def _check(self) -> None:
        if self.full:
            self.refused += 1
            raise StorageError("the meter's non-volatile memory could not be written (disk full); nothing changed")

    def save(self, state: NonVolatile) -> None:
        self._check()
        super().save(state)

    def add_record(self, record: SignedRecord) -> None:
        self._check()
        super().add_record(record)


def seeded_signer(serial: str = SERIAL, seed: str = "tests") -> Any:
    def new_signer(generation: int) -> Signer:
        return Signer.from_seed(seed, serial, generation)

    return new_signer


def make_meter(
    time: Callable[[], float],
    memory: Memory | None = None,
    *,
    profile: str = "iem-dcr-125",
    serial: str = SERIAL,
    switches: Switches | None = None,
) -> Meter:
    return Meter(
        get_profile(profile),
        serial,
        time,
        memory if memory is not None else RamMemory(),
        seeded_signer(serial),
        switches,
    )


def ready_meter(time: Callable[[], float], memory: Memory | None = None, **kwargs: Any) -> Meter:
    """A meter after a charger's init: gw written, tariff and a valid user block set."""
    meter = make_meter(time, memory, **kwargs)
    meter.post_gw(dict(GW))
    meter.post_tariff(dict(TARIFF))
    meter.post_user(dict(USER))
    return meter


def charge(
    meter: Meter,
    time: Advances,
    current: float = 100.0,
    voltage: float = 400.0,
    seconds: float = 360.0,
    *,
    init: bool = False,
) -> str:
    """One whole transaction on the model: B, load, ``seconds`` pass, load off, E; returns the receipt.

    ``init``: first what a charger writes before each transaction, gw (once per power cycle) and the user block.
    """
    if init:
        if not meter.gw_written:
            meter.post_gw(dict(GW))
        meter.post_user(dict(USER))
    meter.post_receipt({"TX": "B"})
    meter.set_load(current, voltage)
    time.advance(seconds)
    meter.set_load(0.0)
    meter.post_receipt({"TX": "E"})
    return meter.get_receipt()


def user_block(body: dict[str, Any]) -> UserBlock:
    """The ``UserBlock`` a valid ``POST user`` body states (TT None when the body has none)."""
    return UserBlock(body["IS"], body["IL"], tuple(body["IF"]), body["IT"], body["ID"], body["US"], body.get("TT"))


def metervalue(meter: Meter) -> dict[str, Any]:
    """``GET metervalue`` as a driver reads it: the meter API's renderer over the live reading, parsed."""
    body: dict[str, Any] = json.loads(metervalue_body(meter.live_reading()))
    return body


def payload_of(record: str) -> str:
    """The payload section (between the first and second ``|``)."""
    return record.split("|")[1]


def assert_verifies(record: str, public_key_hex: str) -> OCMF:
    """pyocmf in strict mode accepts the record: parses, signature true, no Eichrecht errors."""
    parsed = OCMF.from_string(record, strict=True)
    assert parsed.verify_signature(public_key_hex) is True
    assert parsed.check_eichrecht(errors_only=True) == []
    return parsed


def verified_payload(record: str | bytes, public_key_hex: str) -> dict[str, Any]:
    """The payload of a record pyocmf accepts in strict mode (``assert_verifies``); bytes as a meter sent them."""
    text = record.decode("ascii") if isinstance(record, bytes) else record
    assert_verifies(text, public_key_hex)
    payload: dict[str, Any] = json.loads(payload_of(text))
    return payload


def pyocmf_rejects(record: str, public_key_hex: str) -> bool:
    """True when pyocmf refuses the record in any of its three ways.

    Only pyocmf's own refusals count (its errors, and pydantic's, which are ValueErrors): any other exception
    is a fault in the test or the library and propagates."""
    try:
        parsed = OCMF.from_string(record, strict=True)
    except (PyOCMFError, ValueError):
        return True
    try:
        if parsed.verify_signature(public_key_hex) is not True:
            return True
    except (PyOCMFError, ValueError):
        return True
    return parsed.check_eichrecht(errors_only=True) != []
