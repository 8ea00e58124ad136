"""EVerest `powermeter` interface types, serialised in the JSON shapes EVerest uses on its bus.

Sources: everest-core `types/powermeter.yaml`, `types/units.yaml` (Energy, Power, Voltage, Current) and
`types/units_signed.yaml` (SignedMeterValue). `to_json()`/`from_json()` come from `codec.JsonObject`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from iemdcr_twin.driver.codec import REQUIRED, JsonObject


class TransactionRequestStatus(StrEnum):
    """Status of a start or stop request (powermeter.yaml `TransactionRequestStatus`)."""

    OK = "OK"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNEXPECTED_ERROR = "UNEXPECTED_ERROR"


class OCMFUserIdentificationStatus(StrEnum):
    """OCMF IS: whether a user is assigned (powermeter.yaml); ASSIGNED becomes `"IS": true`."""

    ASSIGNED = "ASSIGNED"
    NOT_ASSIGNED = "NOT_ASSIGNED"


class OCMFIdentificationLevel(StrEnum):
    """OCMF IL (powermeter.yaml `OCMFIdentificationLevel`); the driver sends UNKNOWN when unset."""

    NONE = "NONE"
    HEARSAY = "HEARSAY"
    TRUSTED = "TRUSTED"
    VERIFIED = "VERIFIED"
    CERTIFIED = "CERTIFIED"
    SECURE = "SECURE"
    MISMATCH = "MISMATCH"
    INVALID = "INVALID"
    OUTDATED = "OUTDATED"
    UNKNOWN = "UNKNOWN"


class OCMFIdentificationFlags(StrEnum):
    """OCMF IF entries (powermeter.yaml `OCMFIdentificationFlags`), at most 4 per request."""

    RFID_NONE = "RFID_NONE"
    RFID_PLAIN = "RFID_PLAIN"
    RFID_RELATED = "RFID_RELATED"
    RFID_PSK = "RFID_PSK"
    OCPP_NONE = "OCPP_NONE"
    OCPP_RS = "OCPP_RS"
    OCPP_AUTH = "OCPP_AUTH"
    OCPP_RS_TLS = "OCPP_RS_TLS"
    OCPP_AUTH_TLS = "OCPP_AUTH_TLS"
    OCPP_CACHE = "OCPP_CACHE"
    OCPP_WHITELIST = "OCPP_WHITELIST"
    OCPP_CERTIFIED = "OCPP_CERTIFIED"
    ISO15118_NONE = "ISO15118_NONE"
    ISO15118_PNC = "ISO15118_PNC"
    PLMN_NONE = "PLMN_NONE"
    PLMN_RING = "PLMN_RING"
    PLMN_SMS = "PLMN_SMS"


class OCMFIdentificationType(StrEnum):
    """OCMF IT: the kind of identification data (powermeter.yaml `OCMFIdentificationType`)."""

    NONE = "NONE"
    DENIED = "DENIED"
    UNDEFINED = "UNDEFINED"
    ISO14443 = "ISO14443"
    ISO15693 = "ISO15693"
    EMAID = "EMAID"
    EVCCID = "EVCCID"
    EVCOID = "EVCOID"
    ISO7812 = "ISO7812"
    CARD_TXN_NR = "CARD_TXN_NR"
    CENTRAL = "CENTRAL"
    CENTRAL_1 = "CENTRAL_1"
    CENTRAL_2 = "CENTRAL_2"
    LOCAL = "LOCAL"
    LOCAL_1 = "LOCAL_1"
    LOCAL_2 = "LOCAL_2"
    PHONE_NUMBER = "PHONE_NUMBER"
    KEY_CODE = "KEY_CODE"


@dataclass(frozen=True)
class Energy(JsonObject):
    """Energy in Wh (units.yaml `Energy`); the driver fills `total` from the meter's RD[2]/RD[3] registers."""

    total: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None


@dataclass(frozen=True)
class Power(JsonObject):
    """Power in W (units.yaml `Power`), negative when exported; the driver fills `total` from the meter's P."""

    total: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None


@dataclass(frozen=True)
class Voltage(JsonObject):
    """Voltage in V (units.yaml `Voltage`); the driver fills `DC` from the meter's U2."""

    DC: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None


@dataclass(frozen=True)
class Current(JsonObject):
    """Current in A (units.yaml `Current`); the driver fills `DC` from the meter's I."""

    DC: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None
    N: float | None = None


@dataclass(frozen=True)
class Powermeter(JsonObject):
    """The `powermeter` var, published about once a second (powermeter.yaml `Powermeter`, DC fields only).

    `timestamp` is the meter's TM without its status letter; the mapping is driver.md §2 (live loop).
    """

    timestamp: str
    energy_Wh_import: Energy
    meter_id: str | None = None
    energy_Wh_export: Energy | None = None
    power_W: Power | None = None
    voltage_V: Voltage | None = None
    current_A: Current | None = None


@dataclass(frozen=True)
class SignedMeterValue(JsonObject):
    """A signed record as handed to the charger (units_signed.yaml `SignedMeterValue`).

    `signed_meter_data` is the meter's OCMF string byte for byte, `encoding_method` "OCMF", `signing_method` ""
    and `public_key` the meter's PK (hex DER), as the C++ module's `get_receipt`/`get_transaction` fill them.
    """

    signed_meter_data: str
    signing_method: str
    encoding_method: str
    public_key: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class TransactionReq(JsonObject):
    """The start_transaction argument (powermeter.yaml `TransactionReq`); it becomes the meter's POST user.

    ValueError when `identification_flags` has more than 4 entries (the type's maxItems).
    """

    evse_id: str
    transaction_id: str
    identification_status: OCMFUserIdentificationStatus
    identification_type: OCMFIdentificationType
    identification_flags: list[OCMFIdentificationFlags] = field(default_factory=list, metadata=REQUIRED)
    identification_level: OCMFIdentificationLevel | None = None
    identification_data: str | None = None
    tariff_text: str | None = None

    def __post_init__(self) -> None:
        if len(self.identification_flags) > 4:
            raise ValueError("TransactionReq.identification_flags: at most 4 entries")


@dataclass(frozen=True)
class TransactionStartResponse(JsonObject):
    """The start_transaction result (powermeter.yaml `TransactionStartResponse`).

    `error` is "" on OK and always serialised, as the C++ module's responses carry it (driver.md fix 18).
    """

    status: TransactionRequestStatus
    error: str = ""
    transaction_min_stop_time: str | None = None
    transaction_max_stop_time: str | None = None


@dataclass(frozen=True)
class TransactionStopResponse(JsonObject):
    """The stop_transaction result (powermeter.yaml `TransactionStopResponse`); the record is in `signed_meter_value`.

    `error` is "" on OK and always serialised, as the C++ module's responses carry it (driver.md fix 18).
    """

    status: TransactionRequestStatus
    start_signed_meter_value: SignedMeterValue | None = None
    signed_meter_value: SignedMeterValue | None = None
    error: str = ""


@dataclass(frozen=True)
class TransactionEnded(JsonObject):
    """Payload of the driver's `transaction_ended` event (driver.md fix 16); not an EVerest type.

    A start while a transaction runs ends that transaction with E; its signed record travels here, since no
    stop response will carry it. `transaction_id` is the ended transaction's id when this driver began it,
    "" when it does not know (a transaction begun before a driver restart or by another client).
    """

    transaction_id: str
    signed_meter_value: SignedMeterValue
