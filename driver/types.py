"""EVerest `powermeter` interface types, serialised in the JSON shapes EVerest uses on its bus."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Self, TypeVar


class TransactionRequestStatus(StrEnum):
    OK = "OK"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNEXPECTED_ERROR = "UNEXPECTED_ERROR"


class OCMFUserIdentificationStatus(StrEnum):
    ASSIGNED = "ASSIGNED"
    NOT_ASSIGNED = "NOT_ASSIGNED"


class OCMFIdentificationLevel(StrEnum):
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


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """EVerest omits unset optional fields rather than sending null."""
    return {key: value for key, value in data.items() if value is not None}


def _require(data: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object")
    if key not in data:
        raise ValueError(f"{what}: missing key {key!r}")
    value = data[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ValueError(f"{what}.{key}: wrong type bool")
    if not isinstance(value, kind):
        raise ValueError(f"{what}.{key}: wrong type {type(value).__name__}")
    return value


def _optional(data: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if data.get(key) is None:
        return None
    return _require(data, key, kind, what)


E = TypeVar("E", bound=StrEnum)


def _enum(enum: type[E], value: Any, what: str) -> E:
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not one of {[member.value for member in enum]}") from None


@dataclass(frozen=True)
class _Phases:
    """Shared JSON handling of EVerest's unit objects (Energy, Power, Voltage, Current)."""

    def to_json(self) -> dict[str, float]:
        return _drop_none({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        kwargs = {f.name: _optional(data, f.name, (int, float), cls.__name__) for f in fields(cls)}
        return cls(**{k: float(v) for k, v in kwargs.items() if v is not None})


@dataclass(frozen=True)
class Energy(_Phases):
    total: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None


@dataclass(frozen=True)
class Power(_Phases):
    total: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None


@dataclass(frozen=True)
class Voltage(_Phases):
    DC: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None


@dataclass(frozen=True)
class Current(_Phases):
    DC: float | None = None
    L1: float | None = None
    L2: float | None = None
    L3: float | None = None
    N: float | None = None


@dataclass(frozen=True)
class Powermeter:
    """One live measurement as published about once a second."""

    timestamp: str
    energy_Wh_import: Energy
    meter_id: str | None = None
    energy_Wh_export: Energy | None = None
    power_W: Power | None = None
    voltage_V: Voltage | None = None
    current_A: Current | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "timestamp": self.timestamp,
                "meter_id": self.meter_id,
                "energy_Wh_import": self.energy_Wh_import.to_json(),
                "energy_Wh_export": self.energy_Wh_export.to_json() if self.energy_Wh_export else None,
                "power_W": self.power_W.to_json() if self.power_W else None,
                "voltage_V": self.voltage_V.to_json() if self.voltage_V else None,
                "current_A": self.current_A.to_json() if self.current_A else None,
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        what = "Powermeter"
        units: dict[str, Any] = {}
        for key, unit in (
            ("energy_Wh_export", Energy),
            ("power_W", Power),
            ("voltage_V", Voltage),
            ("current_A", Current),
        ):
            raw = _optional(data, key, dict, what)
            units[key] = unit.from_json(raw) if raw is not None else None
        return cls(
            timestamp=_require(data, "timestamp", str, what),
            energy_Wh_import=Energy.from_json(_require(data, "energy_Wh_import", dict, what)),
            meter_id=_optional(data, "meter_id", str, what),
            **units,
        )


@dataclass(frozen=True)
class SignedMeterValue:
    """A signed record as passed to the charger: the meter's OCMF string byte for byte."""

    signed_meter_data: str
    signing_method: str
    encoding_method: str
    public_key: str | None = None
    timestamp: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "signed_meter_data": self.signed_meter_data,
                "signing_method": self.signing_method,
                "encoding_method": self.encoding_method,
                "public_key": self.public_key,
                "timestamp": self.timestamp,
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        what = "SignedMeterValue"
        return cls(
            signed_meter_data=_require(data, "signed_meter_data", str, what),
            signing_method=_require(data, "signing_method", str, what),
            encoding_method=_require(data, "encoding_method", str, what),
            public_key=_optional(data, "public_key", str, what),
            timestamp=_optional(data, "timestamp", str, what),
        )


@dataclass(frozen=True)
class TransactionReq:
    """The start_transaction argument; its identification fields end up in the signed record."""

    evse_id: str
    transaction_id: str
    identification_status: OCMFUserIdentificationStatus
    identification_type: OCMFIdentificationType
    identification_flags: list[OCMFIdentificationFlags] = field(default_factory=list)
    identification_level: OCMFIdentificationLevel | None = None
    identification_data: str | None = None
    tariff_text: str | None = None

    def __post_init__(self) -> None:
        if len(self.identification_flags) > 4:
            raise ValueError("TransactionReq.identification_flags: at most 4 entries")

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "evse_id": self.evse_id,
                "transaction_id": self.transaction_id,
                "identification_status": self.identification_status.value,
                "identification_flags": [flag.value for flag in self.identification_flags],
                "identification_type": self.identification_type.value,
                "identification_level": (self.identification_level.value if self.identification_level else None),
                "identification_data": self.identification_data,
                "tariff_text": self.tariff_text,
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        what = "TransactionReq"
        flags = _require(data, "identification_flags", list, what)
        level = _optional(data, "identification_level", str, what)
        return cls(
            evse_id=_require(data, "evse_id", str, what),
            transaction_id=_require(data, "transaction_id", str, what),
            identification_status=_enum(
                OCMFUserIdentificationStatus,
                _require(data, "identification_status", str, what),
                f"{what}.identification_status",
            ),
            identification_type=_enum(
                OCMFIdentificationType,
                _require(data, "identification_type", str, what),
                f"{what}.identification_type",
            ),
            identification_flags=[
                _enum(OCMFIdentificationFlags, flag, f"{what}.identification_flags") for flag in flags
            ],
            identification_level=(
                _enum(OCMFIdentificationLevel, level, f"{what}.identification_level") if level else None
            ),
            identification_data=_optional(data, "identification_data", str, what),
            tariff_text=_optional(data, "tariff_text", str, what),
        )


@dataclass(frozen=True)
class TransactionStartResponse:
    """`error` is "" on OK and serialised always, as EVerest's generated types do (fix 18)."""

    status: TransactionRequestStatus
    error: str = ""
    transaction_min_stop_time: str | None = None
    transaction_max_stop_time: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "status": self.status.value,
                "error": self.error or "",
                "transaction_min_stop_time": self.transaction_min_stop_time,
                "transaction_max_stop_time": self.transaction_max_stop_time,
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        what = "TransactionStartResponse"
        return cls(
            status=_enum(TransactionRequestStatus, _require(data, "status", str, what), f"{what}.status"),
            error=_optional(data, "error", str, what) or "",
            transaction_min_stop_time=_optional(data, "transaction_min_stop_time", str, what),
            transaction_max_stop_time=_optional(data, "transaction_max_stop_time", str, what),
        )


@dataclass(frozen=True)
class TransactionStopResponse:
    """`error` is "" on OK and serialised always, as EVerest's generated types do (fix 18)."""

    status: TransactionRequestStatus
    start_signed_meter_value: SignedMeterValue | None = None
    signed_meter_value: SignedMeterValue | None = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "status": self.status.value,
                "start_signed_meter_value": (
                    self.start_signed_meter_value.to_json() if self.start_signed_meter_value else None
                ),
                "signed_meter_value": self.signed_meter_value.to_json() if self.signed_meter_value else None,
                "error": self.error or "",
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        what = "TransactionStopResponse"
        start = _optional(data, "start_signed_meter_value", dict, what)
        signed = _optional(data, "signed_meter_value", dict, what)
        return cls(
            status=_enum(TransactionRequestStatus, _require(data, "status", str, what), f"{what}.status"),
            start_signed_meter_value=SignedMeterValue.from_json(start) if start else None,
            signed_meter_value=SignedMeterValue.from_json(signed) if signed else None,
            error=_optional(data, "error", str, what) or "",
        )


@dataclass(frozen=True)
class TransactionEnded:
    """Payload of the driver's `transaction_ended` event (driver.md fix 16).

    A start while a transaction runs ends that transaction with E; its signed record travels here, since no
    stop response will carry it. `transaction_id` is the ended transaction's id when this driver began it,
    "" when it does not know (a transaction begun before a driver restart or by another client).
    """

    transaction_id: str
    signed_meter_value: SignedMeterValue

    def to_json(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "signed_meter_value": self.signed_meter_value.to_json()}
