"""The generic dataclass codec behind every driver type's to_json/from_json (issue 14 item 3)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from iemdcr_twin.driver import codec
from iemdcr_twin.driver.types import (
    Current,
    Energy,
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    Power,
    Powermeter,
    SignedMeterValue,
    TransactionEnded,
    TransactionReq,
    TransactionRequestStatus,
    TransactionStartResponse,
    TransactionStopResponse,
    Voltage,
)

SMV = SignedMeterValue("OCMF|{}|{}", "", "OCMF", public_key="3059", timestamp="2025-06-06T09:26:24,000+0100")
FULL_REQ = TransactionReq(
    evse_id="1234",
    transaction_id="t-1",
    identification_status=OCMFUserIdentificationStatus.ASSIGNED,
    identification_type=OCMFIdentificationType.ISO14443,
    identification_flags=[OCMFIdentificationFlags.RFID_PLAIN, OCMFIdentificationFlags.OCPP_RS_TLS],
    identification_level=OCMFIdentificationLevel.VERIFIED,
    identification_data="04AB",
    tariff_text="0.39 EUR/kWh",
)
REQ_JSON: dict[str, Any] = {
    "evse_id": "1",
    "transaction_id": "t",
    "identification_status": "ASSIGNED",
    "identification_flags": [],
    "identification_type": "NONE",
}

# Every type of the driver with every field set, and with only what EVerest requires.
EVERY_TYPE = [
    Energy(total=1040.0, L1=1.0, L2=2.0, L3=3.0),
    Energy(),
    Power(total=-406.25, L1=1.5, L2=2.5, L3=3.5),
    Voltage(DC=812.5, L1=230.0, L2=231.0, L3=229.0),
    Current(DC=0.5, L1=1.0, L2=2.0, L3=3.0, N=0.25),
    Powermeter(
        timestamp="2025-06-06T09:26:24,000+0100",
        energy_Wh_import=Energy(total=1040.0),
        meter_id="1ISA0200000001",
        energy_Wh_export=Energy(total=0.0),
        power_W=Power(total=406.25),
        voltage_V=Voltage(DC=812.5),
        current_A=Current(DC=0.5),
    ),
    Powermeter(timestamp="2025-06-06T09:26:24,000+0100", energy_Wh_import=Energy(total=0.0)),
    SMV,
    SignedMeterValue("OCMF|{}|{}", "", "OCMF"),
    FULL_REQ,
    TransactionReq("", "t", OCMFUserIdentificationStatus.NOT_ASSIGNED, OCMFIdentificationType.NONE),
    TransactionStartResponse(
        TransactionRequestStatus.OK,
        transaction_min_stop_time="2025-06-06T09:26:24Z",
        transaction_max_stop_time="2025-06-06T10:26:24Z",
    ),
    TransactionStartResponse(TransactionRequestStatus.NOT_SUPPORTED, error="config: CI does not match evse_id"),
    TransactionStopResponse(TransactionRequestStatus.OK, start_signed_meter_value=SMV, signed_meter_value=SMV),
    TransactionStopResponse(TransactionRequestStatus.UNEXPECTED_ERROR, error="boom"),
    TransactionEnded(transaction_id="t-1", signed_meter_value=SMV),
]


@pytest.mark.parametrize("value", EVERY_TYPE, ids=lambda value: type(value).__name__)
def test_every_type_round_trips_through_json_text(value: Any) -> None:
    text = json.dumps(value.to_json())
    assert type(value).from_json(json.loads(text)) == value
    assert codec.from_json(type(value), json.loads(text)) == value
    assert codec.to_json(value) == value.to_json()


def test_unset_optional_fields_are_left_out_never_null() -> None:
    for value in EVERY_TYPE:
        assert None not in value.to_json().values(), value
    assert Energy(total=5.0).to_json() == {"total": 5.0}
    assert SignedMeterValue("d", "", "OCMF").to_json() == {
        "signed_meter_data": "d",
        "signing_method": "",
        "encoding_method": "OCMF",
    }


def test_enums_travel_as_their_names_and_come_back_as_members() -> None:
    data = FULL_REQ.to_json()
    assert data["identification_flags"] == ["RFID_PLAIN", "OCPP_RS_TLS"]
    assert type(data["identification_status"]) is str and data["identification_level"] == "VERIFIED"
    parsed = TransactionReq.from_json(data)
    assert parsed.identification_flags[0] is OCMFIdentificationFlags.RFID_PLAIN
    assert parsed.identification_type is OCMFIdentificationType.ISO14443


def test_error_is_always_present_and_empty_on_ok() -> None:
    """Fix 18 through the codec: `error` is a str field with default "", so it is never left out."""
    assert TransactionStopResponse(TransactionRequestStatus.OK).to_json() == {"status": "OK", "error": ""}
    assert TransactionStartResponse.from_json({"status": "OK", "error": None}).error == ""
    assert TransactionStopResponse.from_json({"status": "OK"}).error == ""


def test_integers_are_read_as_floats_for_number_fields() -> None:
    energy = Energy.from_json({"total": 1040})
    assert energy.total == 1040.0 and type(energy.total) is float


def test_unknown_keys_are_ignored() -> None:
    """EVerest's Powermeter has AC fields (frequency_Hz, VAR, phase_seq_error...) the DC driver does not model."""
    data = {
        "timestamp": "t",
        "energy_Wh_import": {"total": 1.0},
        "frequency_Hz": {"L1": 50.0},
        "phase_seq_error": False,
    }
    assert Powermeter.from_json(data) == Powermeter(timestamp="t", energy_Wh_import=Energy(total=1.0))


def test_null_stands_for_an_unset_optional_field() -> None:
    data = {**REQ_JSON, "identification_level": None, "tariff_text": None}
    req = TransactionReq.from_json(data)
    assert req.identification_level is None and req.tariff_text is None


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (TransactionReq, {**REQ_JSON, "evse_id": 5}, "TransactionReq.evse_id: expected a string, got a number (5)"),
        (TransactionReq, {**REQ_JSON, "evse_id": None}, "TransactionReq.evse_id: expected a string, got null"),
        (
            TransactionReq,
            {**REQ_JSON, "tariff_text": True},
            "TransactionReq.tariff_text: expected a string, got a boolean (True)",
        ),
        (
            TransactionReq,
            {**REQ_JSON, "identification_flags": "RFID_PLAIN"},
            "TransactionReq.identification_flags: expected an array, got a string ('RFID_PLAIN')",
        ),
        (
            TransactionReq,
            {**REQ_JSON, "identification_flags": None},
            "TransactionReq.identification_flags: expected an array, got null",
        ),
        (
            TransactionReq,
            {**REQ_JSON, "identification_status": 1},
            "TransactionReq.identification_status: expected a string, got a number (1)",
        ),
        (Energy, {"total": True}, "Energy.total: expected a number, got a boolean (True)"),
        (Energy, {"total": "1.04"}, "Energy.total: expected a number, got a string ('1.04')"),
        (
            Powermeter,
            {"timestamp": "t", "energy_Wh_import": [1.0]},
            "Powermeter.energy_Wh_import: expected a JSON object, got an array",
        ),
        (Powermeter, ["timestamp"], "Powermeter: expected a JSON object, got an array"),
        (TransactionStopResponse, None, "TransactionStopResponse: expected a JSON object, got null"),
    ],
)
def test_wrong_types_name_the_type_and_key(cls: type[codec.JsonObject], data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls.from_json(data)


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (
            TransactionReq,
            {k: v for k, v in REQ_JSON.items() if k != "evse_id"},
            "TransactionReq: missing key 'evse_id'",
        ),
        # EVerest requires identification_flags although Python gives it a default (codec.REQUIRED)
        (
            TransactionReq,
            {k: v for k, v in REQ_JSON.items() if k != "identification_flags"},
            "TransactionReq: missing key 'identification_flags'",
        ),
        (Powermeter, {"timestamp": "t"}, "Powermeter: missing key 'energy_Wh_import'"),
        (TransactionStartResponse, {"error": ""}, "TransactionStartResponse: missing key 'status'"),
        (
            SignedMeterValue,
            {"signed_meter_data": "d", "signing_method": ""},
            "SignedMeterValue: missing key 'encoding_method'",
        ),
    ],
)
def test_missing_keys_are_named(cls: type[codec.JsonObject], data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls.from_json(data)


@pytest.mark.parametrize(
    ("cls", "data", "path", "enum"),
    [
        (
            TransactionReq,
            {**REQ_JSON, "identification_type": "X"},
            "TransactionReq.identification_type",
            OCMFIdentificationType,
        ),
        (
            TransactionReq,
            {**REQ_JSON, "identification_status": "MAYBE"},
            "TransactionReq.identification_status",
            OCMFUserIdentificationStatus,
        ),
        (
            TransactionReq,
            {**REQ_JSON, "identification_level": "high"},
            "TransactionReq.identification_level",
            OCMFIdentificationLevel,
        ),
        # "" is no level: an unset level is left out (or null), as EVerest sends it
        (
            TransactionReq,
            {**REQ_JSON, "identification_level": ""},
            "TransactionReq.identification_level",
            OCMFIdentificationLevel,
        ),
        (TransactionStartResponse, {"status": "ok"}, "TransactionStartResponse.status", TransactionRequestStatus),
    ],
)
def test_unknown_enum_values_list_the_known_ones(cls: type[codec.JsonObject], data: Any, path: str, enum: Any) -> None:
    with pytest.raises(ValueError) as raised:
        cls.from_json(data)
    known = [member.value for member in enum]
    assert str(raised.value) == f"{path}: {data[path.split('.')[1]]!r} is not one of {known}"


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (
            TransactionReq,
            {**REQ_JSON, "identification_flags": ["RFID_PLAIN", "NOPE"]},
            "TransactionReq.identification_flags[1]: 'NOPE' is not one of",
        ),
        (
            TransactionReq,
            {**REQ_JSON, "identification_flags": ["RFID_PLAIN", 7]},
            "TransactionReq.identification_flags[1]: expected a string, got a number (7)",
        ),
        (
            Powermeter,
            {"timestamp": "t", "energy_Wh_import": {"total": "1"}},
            "Powermeter.energy_Wh_import.total: expected a number",
        ),
        (
            Powermeter,
            {"timestamp": "t", "energy_Wh_import": {"total": 1}, "current_A": {"DC": None, "N": "x"}},
            "Powermeter.current_A.N: expected a number",
        ),
        (
            TransactionStopResponse,
            {"status": "OK", "signed_meter_value": {"signed_meter_data": "d", "signing_method": ""}},
            "TransactionStopResponse.signed_meter_value: missing key 'encoding_method'",
        ),
        # {} is no record: an absent record is left out (or null)
        (
            TransactionStopResponse,
            {"status": "OK", "start_signed_meter_value": {}},
            "TransactionStopResponse.start_signed_meter_value: missing key 'signed_meter_data'",
        ),
        (
            TransactionEnded,
            {"transaction_id": "t", "signed_meter_value": {**SMV.to_json(), "public_key": 3059}},
            "TransactionEnded.signed_meter_value.public_key: expected a string",
        ),
    ],
)
def test_nested_errors_name_the_path(cls: type[codec.JsonObject], data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        cls.from_json(data)


def test_checks_of_the_type_itself_still_run() -> None:
    with pytest.raises(ValueError, match=r"^TransactionReq\.identification_flags: at most 4 entries$"):
        TransactionReq.from_json({**REQ_JSON, "identification_flags": ["RFID_NONE"] * 5})


# --- the codec on types of its own: what it supports, and what it refuses at first use -------------------------


@dataclass(frozen=True)
class _Counts:
    count: int
    ok: bool
    ratio: float | None = None
    old_style: Optional[str] = None  # noqa: UP045 - the typing.Optional spelling must work too
    names: list[str] = field(default_factory=list, metadata=codec.REQUIRED)
    note: str = "none"


@dataclass(frozen=True)
class _Unsupported:
    table: dict[str, int]


@dataclass(frozen=True)
class _TwoChoices:
    value: int | str | None = None


@dataclass(frozen=True)
class _NestsUnsupported:
    inner: _Unsupported


def test_int_bool_optional_and_metadata_on_a_type_of_its_own() -> None:
    value = _Counts(count=3, ok=False, ratio=0.5, old_style="x", names=["a"], note="n")
    assert codec.to_json(value) == {
        "count": 3,
        "ok": False,
        "ratio": 0.5,
        "old_style": "x",
        "names": ["a"],
        "note": "n",
    }
    assert codec.from_json(_Counts, codec.to_json(value)) == value
    assert codec.from_json(_Counts, {"count": 1, "ok": True, "names": []}) == _Counts(1, True)
    with pytest.raises(ValueError, match=r"^_Counts.count: expected an integer, got a number \(1.5\)$"):
        codec.from_json(_Counts, {"count": 1.5, "ok": True, "names": []})
    with pytest.raises(ValueError, match=r"^_Counts.count: expected an integer, got a boolean \(True\)$"):
        codec.from_json(_Counts, {"count": True, "ok": True, "names": []})
    with pytest.raises(ValueError, match=r"^_Counts.ok: expected true or false, got a number \(1\)$"):
        codec.from_json(_Counts, {"count": 1, "ok": 1, "names": []})
    with pytest.raises(ValueError, match=r"^_Counts: missing key 'names'$"):
        codec.from_json(_Counts, {"count": 1, "ok": True})


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (_Unsupported, "_Unsupported.table: the codec cannot handle fields of type"),
        (_TwoChoices, "_TwoChoices.value: the codec supports `X | None` only"),
        (_NestsUnsupported, "_Unsupported.table: the codec cannot handle fields of type"),
    ],
)
def test_field_types_it_cannot_handle_are_refused_by_name(cls: type, message: str) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(message)}"):
        codec.from_json(cls, {})


def test_to_json_needs_a_dataclass_instance() -> None:
    with pytest.raises(TypeError, match="dataclass instance, got dict"):
        codec.to_json({"total": 1.0})
    with pytest.raises(TypeError, match="dataclass instance, got type"):
        codec.to_json(Energy)
