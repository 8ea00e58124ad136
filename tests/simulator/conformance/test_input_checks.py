"""WARN checks for charger inputs over HTTP, and the mirror of pyocmf's strict rules checked against pyocmf."""

from __future__ import annotations

import pytest
from pyocmf import OCMF
from pyocmf.exceptions import PyOCMFError

from iemdcr_twin.simulator.conformance.charger_inputs import ct_problem, enum_problems, id_problem, level_problem
from tests.support.clock import FakeTime
from tests.support.lab import Lab, check_of
from tests.support.meter import USER, make_meter


async def test_free_text_ct_warns_and_nothing_fails(lab: Lab) -> None:
    await lab.post("receipt", {"TX": "E"})
    await lab.init(ct="DC-Test-Charger")
    await lab.charge()
    report = await lab.report()
    check = check_of(report, "charge_point_type")
    assert check["verdict"] == "WARN"
    assert "DC-Test-Charger" in check["evidence"][0]["message"]
    assert report["verdict"] == "WARN"
    assert report["counts"]["FAIL"] == 0


async def test_uuid_as_iso14443_id_warns(lab: Lab) -> None:
    await lab.post("receipt", {"TX": "E"})
    await lab.init()
    await lab.charge({**USER, "ID": "0c2f6e4e-7d2b-4b8e-9a55-0d7f5f8e1a2b"})
    check = check_of(await lab.report(), "identification_format")
    assert check["verdict"] == "WARN"
    assert "ISO14443" in check["evidence"][0]["message"]


async def test_unknown_level_warns_as_not_billable(lab: Lab) -> None:
    await lab.init()
    await lab.charge({**USER, "IL": "UNKNOWN"})
    check = check_of(await lab.report(), "identification_level")
    assert check["verdict"] == "WARN"
    assert "EVerest" in check["evidence"][0]["message"]


async def test_unknown_enum_values_warn(lab: Lab) -> None:
    await lab.init()
    assert await lab.post("user", {**USER, "IL": "GOOD", "IF": ["RFID_PLAIN", "RFID_MAGIC"], "IT": "BADGE"}) == 200
    check = check_of(await lab.report(), "ocmf_enum_values")
    assert check["verdict"] == "WARN"
    messages = " ".join(finding["message"] for finding in check["evidence"])
    assert "'GOOD'" in messages and "'RFID_MAGIC'" in messages and "'BADGE'" in messages


def strict_accepts(**user: object) -> bool:
    """Sign a record with this user block on the model and ask pyocmf in strict mode."""
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw({"CT": user.pop("CT", "EVSEID"), "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"})
    meter.post_user({**USER, **user})
    meter.post_receipt({"TX": "B"})
    time.advance(60)
    meter.post_receipt({"TX": "E"})
    try:
        OCMF.from_string(meter.get_receipt(), strict=True)
    except (PyOCMFError, ValueError):  # pyocmf's refusals (pydantic's are ValueErrors); nothing else is swallowed
        return False
    return True


@pytest.mark.parametrize(
    ("it", "ident"),
    [
        ("ISO14443", "04A1B2C3"),
        ("ISO14443", "04A1B2C3D4E5F6"),
        ("ISO14443", "04A1B2C3D4"),
        ("ISO14443", "0c2f6e4e-7d2b-4b8e-9a55-0d7f5f8e1a2b"),
        ("ISO15693", "E007000012345678"),
        ("ISO15693", "E0070000"),
        ("EMAID", "DETNME12345678X"),
        ("EMAID", "DE*TNM*12345678"),
        ("EVCCID", "0A1B2C3D4E5F"),
        ("EVCCID", "0A1B2C3D4E5F01"),
        ("ISO7812", "4111111111111111"),
        ("ISO7812", "41111"),
        ("LOCAL", "anything at all"),
        ("CENTRAL", "0c2f6e4e-7d2b"),
    ],
)
def test_id_rule_agrees_with_pyocmf_strict(it: str, ident: str) -> None:
    assert (id_problem(it, ident) is None) == strict_accepts(IT=it, ID=ident)


@pytest.mark.parametrize("ct", ["EVSEID", "CBIDC", "DC-Test-Charger"])
def test_ct_rule_agrees_with_pyocmf_strict(ct: str) -> None:
    assert (ct_problem(ct) is None) == strict_accepts(CT=ct)


@pytest.mark.parametrize(
    "user", [{"IL": "GOOD"}, {"IT": "BADGE", "ID": "x"}, {"IF": ["RFID_MAGIC"]}, {"IL": " VERIFIED"}, {}]
)
def test_enum_rule_agrees_with_pyocmf_strict(user: dict[str, object]) -> None:
    assert (enum_problems({**USER, **user}) == []) == strict_accepts(**user)


@pytest.mark.parametrize("level", ["MISMATCH", "INVALID", "OUTDATED", "UNKNOWN", "VERIFIED", "NONE"])
def test_level_rule_agrees_with_check_eichrecht(level: str) -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw({"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"})
    meter.post_user({**USER, "IL": level})
    meter.post_receipt({"TX": "B"})
    time.advance(60)
    meter.post_receipt({"TX": "E"})
    errors = OCMF.from_string(meter.get_receipt(), strict=True).check_eichrecht(errors_only=True)
    assert (level_problem(level) is not None) == (errors != [])
