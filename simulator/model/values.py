"""The typed values the meter answers with; the meter API renders them on the wire (meter-api.md §2, §4).

Names: a field that holds the value of an OCMF or meter API field carries that field's name verbatim (``TM``,
``CT``, ``XS``), as ``simulator.ocmf`` does; other names are snake_case with the unit last (``import_mwh``,
``current_A``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from iemdcr_twin.simulator.ocmf import Reading

SHUNT_OHM = 0.0001


class GwBlock(NamedTuple):
    """``GET``/``POST gw`` (meter-api.md §3.2): CT and CI as written this power cycle (``""`` before), TM the
    meter time with its status letter."""

    CT: str
    CI: str
    TM: str


class UserBlock(NamedTuple):
    """``GET``/``POST user`` (meter-api.md §3.7): the identification that B signs (IS, IL, IF, IT, ID, as in
    ocmf.md §3), US (show ID on the display) and TT when the block carried one (``None``: it did not)."""

    IS: bool = False
    IL: str = "NONE"
    IF: tuple[str, ...] = ()
    IT: str = "NONE"
    ID: str = ""
    US: bool = False
    TT: str | None = None

    def fields(self) -> dict[str, Any]:
        """The block under its wire names ``{"IS","IL","IF","IT","ID","US"[,"TT"]}``, TT only when it carried one:
        the body of ``GET``/``POST user`` and the data of the model's ``user`` event."""
        data: dict[str, Any] = {
            "IS": self.IS,
            "IL": self.IL,
            "IF": list(self.IF),
            "IT": self.IT,
            "ID": self.ID,
            "US": self.US,
        }
        if self.TT is not None:
            data["TT"] = self.TT
        return data


class PublicKey(NamedTuple):
    """``GET publickey`` (meter-api.md §2, §5): SA the signature algorithm, PK the DER SubjectPublicKeyInfo as
    hex."""

    SA: str
    PK: str


class ReceiptAnswer(NamedTuple):
    """``POST receipt`` (meter-api.md §3.6): the TX done (B or E) and XT, whether a transaction now runs."""

    TX: str
    XT: bool


class LiveReading(NamedTuple):
    """What ``GET metervalue`` shows (meter-api.md §4): registers in whole mWh (the meter API shows them as kWh),
    current in A and voltage in V unrounded (``*_shown`` round them as the meter shows them), XS the status word
    as a number, XC the status code text."""

    MS: str
    TM: str
    EF: str
    ST: str
    XT: bool
    import_mwh: int
    export_mwh: int
    tx_import_mwh: int
    tx_export_mwh: int
    current_A: float
    voltage_V: float
    XS: int
    XC: str

    @property
    def current_shown(self) -> float:
        """I: the current in A, to 3 decimals."""
        return round(self.current_A, 3)

    @property
    def voltage_shown(self) -> float:
        """U2: the circuit voltage in V, to 3 decimals."""
        return round(self.voltage_V, 3)

    @property
    def power_shown(self) -> float:
        """P: the power in W, to 3 decimals."""
        return round(self.voltage_V * self.current_A, 3)

    @property
    def shunt_voltage(self) -> float:
        """U1: the drop over the shunt in V (twin, meter-api.md §4), to 6 decimals."""
        return round(self.current_A * SHUNT_OHM, 6)


@dataclass(frozen=True)
class OpenTransaction:
    """What B captured (meter-api.md §3.6): the begin reading and the CT, CI, user block and TT in force at B,
    which the record signs."""

    begin: Reading
    CT: str
    CI: str
    user: UserBlock
    TT: str
