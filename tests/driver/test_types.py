"""EVerest JSON shapes of the powermeter interface types."""

from __future__ import annotations

import pytest

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
    TransactionReq,
    TransactionRequestStatus,
    TransactionStartResponse,
    TransactionStopResponse,
    Voltage,
)


def test_powermeter_shape_and_round_trip() -> None:
    pm = Powermeter(
        timestamp="2025-06-06T09:26:24,000+0100",
        meter_id="1ISA0200000001",
        energy_Wh_import=Energy(total=1040.0),
        energy_Wh_export=Energy(total=0.0),
        power_W=Power(total=406.25),
        voltage_V=Voltage(DC=812.5),
        current_A=Current(DC=0.5),
    )
    data = pm.to_json()
    assert data == {
        "timestamp": "2025-06-06T09:26:24,000+0100",
        "meter_id": "1ISA0200000001",
        "energy_Wh_import": {"total": 1040.0},
        "energy_Wh_export": {"total": 0.0},
        "power_W": {"total": 406.25},
        "voltage_V": {"DC": 812.5},
        "current_A": {"DC": 0.5},
    }
    assert Powermeter.from_json(data) == pm


def test_transaction_req_round_trip_and_optional_fields() -> None:
    data = {
        "evse_id": "1234",
        "transaction_id": "tx",
        "identification_status": "ASSIGNED",
        "identification_flags": ["RFID_PLAIN", "OCPP_RS_TLS"],
        "identification_type": "ISO14443",
        "identification_level": "VERIFIED",
        "identification_data": "04AB",
        "tariff_text": "t",
    }
    req = TransactionReq.from_json(data)
    assert req.identification_status is OCMFUserIdentificationStatus.ASSIGNED
    assert req.identification_flags == [OCMFIdentificationFlags.RFID_PLAIN, OCMFIdentificationFlags.OCPP_RS_TLS]
    assert req.identification_level is OCMFIdentificationLevel.VERIFIED
    assert req.to_json() == data
    minimal = {k: data[k] for k in ("evse_id", "transaction_id", "identification_status", "identification_type")}
    minimal["identification_flags"] = []
    req = TransactionReq.from_json(minimal)
    assert req.identification_level is None and req.identification_data is None
    assert req.to_json() == minimal
    assert req.identification_type is OCMFIdentificationType.ISO14443


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"identification_status": "MAYBE"}, "identification_status"),
        ({"identification_flags": ["RFID_PLAIN"] * 5}, "at most 4"),
        ({"identification_flags": ["NOPE"]}, "identification_flags"),
        ({"evse_id": 5}, "evse_id"),
    ],
)
def test_transaction_req_rejects_bad_json(change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {
        "evse_id": "1",
        "transaction_id": "t",
        "identification_status": "ASSIGNED",
        "identification_flags": [],
        "identification_type": "NONE",
    }
    data.update(change)
    with pytest.raises(ValueError, match=message):
        TransactionReq.from_json(data)


def test_responses_round_trip() -> None:
    start = TransactionStartResponse(TransactionRequestStatus.UNEXPECTED_ERROR, error="boom")
    assert start.to_json() == {"status": "UNEXPECTED_ERROR", "error": "boom"}
    assert TransactionStartResponse.from_json(start.to_json()) == start
    smv = SignedMeterValue("OCMF|{}|{}", "", "OCMF", public_key="3059")
    stop = TransactionStopResponse(TransactionRequestStatus.OK, signed_meter_value=smv)
    assert stop.to_json() == {
        "status": "OK",
        "signed_meter_value": {
            "signed_meter_data": "OCMF|{}|{}",
            "signing_method": "",
            "encoding_method": "OCMF",
            "public_key": "3059",
        },
        "error": "",
    }
    assert TransactionStopResponse.from_json(stop.to_json()) == stop


def test_ok_responses_carry_an_empty_error_as_everest_serialises_them() -> None:
    """Fix 18: the C++ module's responses (traces/everest-cpp `steps`) carry "error":"" on OK."""
    assert TransactionStartResponse(TransactionRequestStatus.OK).to_json() == {"status": "OK", "error": ""}
    smv = SignedMeterValue("OCMF|{}|{}", "", "OCMF", public_key="3059")
    stop = TransactionStopResponse(TransactionRequestStatus.OK, signed_meter_value=smv).to_json()
    assert set(stop) == {"status", "signed_meter_value", "error"} and stop["error"] == ""
    # what an EVerest bridge hands back parses too, with or without the key
    assert TransactionStartResponse.from_json({"status": "OK", "error": ""}).error == ""
    assert TransactionStartResponse.from_json({"status": "OK"}) == TransactionStartResponse(TransactionRequestStatus.OK)


def test_enum_values_are_their_names() -> None:
    for enum in (OCMFIdentificationFlags, OCMFIdentificationLevel, OCMFIdentificationType):
        assert all(member.value == member.name for member in enum)
    assert len(OCMFIdentificationFlags) == 17 and len(OCMFIdentificationType) == 18
