"""The meter's non-volatile memory as data, and the port the model writes it through.

The model never does I/O itself: it hands snapshots to a ``Memory`` (in RAM here, atomic files in
``simulator.store``), and calls it before acknowledging anything signed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from iemdcr_twin.simulator.model.energy import REGISTER_WRAP_UJ, UJ_PER_MWH, parse_kwh, register_delta, wrap_uj


@dataclass(frozen=True)
class SignedRecord:
    """One signed transaction record, as kept in the history: PG's number, the end reading's TX (``reason``), the
    OCMF string, the signing key's fingerprint, TM and RV of the begin and end readings (ocmf.md §3)."""

    pagination: int
    reason: str
    ocmf: str
    key_fingerprint: str
    begin_TM: str
    end_TM: str
    begin_RV: str
    end_RV: str
    public_key: str = ""  # hex DER; kept so archived records stay verifiable after a factory reset
    import_uj: int = 0  # the absolute registers at the end reading: the record alone makes TX E durable
    export_uj: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The record as stored (``simulator.store``), under the keys records have always been written with."""
        return {_STORED_KEY.get(name, name): value for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedRecord:
        """A record as stored; ``ValueError`` names the first key that is missing or of the wrong type or range.
        Records written before the optional fields existed load with their defaults."""
        values = _checked(data, RECORD_RULES, RECORD_OPTIONAL)
        return cls(**{_FIELD_OF.get(key, key): value for key, value in values.items()})


# The record files keep the keys they had before the fields took OCMF's names: a state dir written by an
# earlier twin loads unchanged, and one written now loads in an earlier twin.
_STORED_KEY = {"begin_TM": "begin_tm", "end_TM": "end_tm", "begin_RV": "begin_rv", "end_RV": "end_rv"}
_FIELD_OF = {stored: name for name, stored in _STORED_KEY.items()}


@dataclass(frozen=True)
class NonVolatile:
    """What survives a power cycle and a process restart (meter-api.md §3.1): identity, the key as PEM and its
    generation (factory resets), the absolute registers in µJ, the next PG number, the last OCMF record."""

    serial: str
    profile: str
    key_pem: str
    key_generation: int
    import_uj: int
    export_uj: int
    next_pagination: int
    last_transaction: str | None

    def as_dict(self) -> dict[str, Any]:
        """The state as stored in ``state.json`` (one key per field)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NonVolatile:
        """The state as stored; ``ValueError`` names the first key that is missing or of the wrong type or range."""
        return cls(**_checked(data, STATE_RULES))


Rule = tuple[str, Any]  # (what it must be, a check returning True when the value is fine)
_KWH = re.compile(r"[0-9]{8}\.[0-9]{3}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _register(value: Any) -> bool:
    return _count(value) and value < REGISTER_WRAP_UJ


def _text(value: Any) -> bool:
    return isinstance(value, str)


COUNT: Rule = ("a whole number from 0", _count)
REGISTER: Rule = (f"a whole number of µJ from 0 to {REGISTER_WRAP_UJ - 1} (the register's width)", _register)
TEXT: Rule = ("a string", _text)
STATE_RULES: dict[str, Rule] = {
    "serial": TEXT,
    "profile": TEXT,
    "key_pem": TEXT,
    "key_generation": COUNT,
    "import_uj": REGISTER,
    "export_uj": REGISTER,
    "next_pagination": COUNT,
    "last_transaction": ("a string or null", lambda value: value is None or isinstance(value, str)),
}
RECORD_RULES: dict[str, Rule] = {
    "pagination": COUNT,
    "reason": TEXT,
    "ocmf": ("an OCMF string", lambda value: isinstance(value, str) and value.startswith("OCMF|")),
    "key_fingerprint": TEXT,
    "begin_tm": TEXT,
    "end_tm": TEXT,
    "begin_rv": ("kWh as 8.3 digits, e.g. 00000446.540", lambda value: _text(value) and _KWH.fullmatch(value)),
    "end_rv": ("kWh as 8.3 digits, e.g. 00000446.540", lambda value: _text(value) and _KWH.fullmatch(value)),
    "public_key": TEXT,
    "import_uj": REGISTER,
    "export_uj": REGISTER,
}
RECORD_OPTIONAL = frozenset({"public_key", "import_uj", "export_uj"})  # records written before these existed


def _checked(data: dict[str, Any], rules: dict[str, Rule], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The values of ``rules``' keys (in field order); ``ValueError`` names the first missing or bad one."""
    values: dict[str, Any] = {}
    for key, (what, ok) in rules.items():
        if key not in data:
            if key in optional:
                continue
            raise ValueError(f"key {key!r} is missing")
        value = data[key]
        if not ok(value):
            raise ValueError(f"key {key!r} must be {what}, not {_short(value)}")
        values[key] = value
    return values


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Memory(Protocol):
    """Durable storage for one meter; every call returns only once the data is safe.

    ``save`` and ``add_record`` raise ``StorageError`` when the data could not be made durable; the model calls
    them before it changes anything, so a refused write leaves the meter as it was (docs/persistence.md).
    """

    def load(self) -> NonVolatile | None:
        """The state last saved (None: factory new)."""

    def records_since(self, fingerprint: str, pagination: int) -> list[SignedRecord]:
        """The records of one key from a pagination on: what a state saved at that PG may not count yet."""

    def history(self) -> list[SignedRecord]:
        """Every record, in signing order (read when first asked for: a long history must not slow start-up)."""

    def save(self, state: NonVolatile) -> None:
        """Replace the saved state (``StorageError``: the old one stays)."""

    def add_record(self, record: SignedRecord) -> None:
        """Append one signed record (``StorageError``: it was not stored)."""


class RamMemory:
    """A ``Memory`` that lives as long as the process: a restart is a factory-new meter. Never raises."""

    def __init__(self) -> None:
        self.state: NonVolatile | None = None
        self.records: list[SignedRecord] = []
        self.saves = 0

    def load(self) -> NonVolatile | None:
        return self.state

    def records_since(self, fingerprint: str, pagination: int) -> list[SignedRecord]:
        return [r for r in self.records if r.key_fingerprint == fingerprint and r.pagination >= pagination]

    def history(self) -> list[SignedRecord]:
        return list(self.records)

    def save(self, state: NonVolatile) -> None:
        self.state = state
        self.saves += 1

    def add_record(self, record: SignedRecord) -> None:
        self.records.append(record)


def reconcile(state: NonVolatile, records: list[SignedRecord], fingerprint: str) -> NonVolatile:
    """The records are the truth where the state is older: TX E writes only its record (one atomic file),
    and the state follows at the next checkpoint.

    The pagination counter resumes after the newest record of the current key, the last transaction is that
    record, and the registers are never below what a record saw (never below a signed end value), modulo the
    register width: a record after a wrap is ahead of a state from before it. Records signed before the state
    was saved change nothing, so ``Memory.records_since`` the state's PG is enough.
    """
    own = [record for record in records if record.key_fingerprint == fingerprint]
    if not own:
        return state
    newest = max(own, key=lambda record: record.pagination)
    next_pg = max(state.next_pagination, newest.pagination + 1)
    last = state.last_transaction if state.next_pagination > newest.pagination else newest.ocmf
    signed_uj = [parse_kwh(record.end_RV) * UJ_PER_MWH for record in own]
    import_uj = _furthest(state.import_uj, [*signed_uj, *(record.import_uj for record in own)])
    export_uj = _furthest(state.export_uj, [record.export_uj for record in own])
    return NonVolatile(
        state.serial,
        state.profile,
        state.key_pem,
        state.key_generation,
        import_uj,
        export_uj,
        next_pg,
        last,
    )


def _furthest(base: int, values: list[int]) -> int:
    """The value furthest ahead of ``base`` on the register (``base`` itself when all are behind it)."""
    return wrap_uj(base + max(0, *(register_delta(base, value) for value in values)))
