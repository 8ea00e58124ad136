"""Record history on the control API: JSON list, S.A.F.E. XML read back by pyocmf, faulty next records, reset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pyocmf import OcmfContainer

from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model import RamMemory, SignedRecord
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS
from tests.simulator.helpers import assert_verifies, pyocmf_rejects
from tests.simulator.twin_helpers import JSON_TYPE, S1, charge, json_error, json_ok, new_twin

Client = TestClient[Any, Any]
METER = f"/api/meters/{S1}"


@pytest.fixture
def twin() -> Twin:
    return new_twin()


async def records(control: Client, query: str = "") -> list[dict[str, Any]]:
    body = await json_ok(await control.get(f"{METER}/records{query}"))
    result: list[dict[str, Any]] = body["records"]
    return result


async def test_records_list_newest_last_with_readings_and_key(control: Client, twin: Twin) -> None:
    meter = twin.slot(S1).meter
    assert await records(control) == []
    charge(meter, twin.clock)
    charge(meter, twin.clock, seconds=1200)
    listed = await records(control)
    assert [r["PG"] for r in listed] == ["T1", "T2"]
    last = listed[-1]
    assert last["reason"] == "E" and last["archived"] is False
    assert last["fingerprint"] == meter.signer.fingerprint
    assert last["public_key"] == meter.signer.public_key_hex
    assert last["end"]["RV"] > last["begin"]["RV"] and last["end"]["TM"] > last["begin"]["TM"]
    assert last["ocmf"] == meter.last_transaction
    parsed = assert_verifies(last["ocmf"], last["public_key"])
    assert parsed.payload.PG == "T2"
    assert [r["PG"] for r in await records(control, "?pg=T1")] == ["T1"]


async def test_safe_xml_is_read_back_and_verified_by_pyocmf(control: Client, twin: Twin, tmp_path: Path) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock)
    await json_ok(await control.post(f"{METER}/factory-reset"))
    charge(meter, twin.clock)
    charge(meter, twin.clock)
    resp = await control.get(f"{METER}/records?format=safe-xml")
    assert resp.status == 200 and resp.content_type == "application/xml"
    path = tmp_path / "records.xml"
    path.write_bytes(await resp.read())
    container = OcmfContainer.from_xml(path, strict=True)
    assert len(container) == 3
    for entry in container:
        assert entry.context == "Transaction.End"
        assert entry.verify_signature() is True
        assert entry.ocmf.check_eichrecht(errors_only=True) == []
    assert [entry.transaction_id for entry in container] == [1, 1, 2]
    keys = {str(entry.public_key) for entry in container}
    assert len(keys) == 2  # the archived record carries the old key


async def test_safe_xml_of_one_record(control: Client, twin: Twin, tmp_path: Path) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock)
    charge(meter, twin.clock)
    resp = await control.get(f"{METER}/records", params={"format": "safe-xml", "pg": "T2"})
    path = tmp_path / "one.xml"
    path.write_bytes(await resp.read())
    container = OcmfContainer.from_xml(path, strict=True)
    assert [entry.ocmf.payload.PG for entry in container] == ["T2"]
    assert container[0].transaction_id == 2


@pytest.mark.parametrize(
    ("query", "status", "code", "word"),
    [
        ("?format=pdf", 400, "bad_query", "format"),
        ("?pg=5", 400, "bad_query", "pg"),
        ("?pg=T01", 400, "bad_query", "pg"),
        ("?pg=T99", 404, "unknown_record", "pg"),
        ("?key=nope", 404, "unknown_record", "key"),
    ],
)
async def test_bad_record_queries(control: Client, twin: Twin, query: str, status: int, code: str, word: str) -> None:
    charge(twin.slot(S1).meter, twin.clock)
    await json_error(await control.get(f"{METER}/records{query}"), status, code, word)


async def test_factory_reset_archives_old_records_and_restarts_pagination(control: Client, twin: Twin) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock)
    old = meter.signer.public_key_hex
    body = await json_ok(await control.post(f"{METER}/factory-reset", data=b""))
    assert body["archived_records"] == 1 and body["pagination"] == {"next": 1}
    assert body["fingerprint"] != body["previous_fingerprint"]
    charge(meter, twin.clock)
    listed = await records(control)
    assert [(r["PG"], r["archived"]) for r in listed] == [("T1", True), ("T1", False)]
    assert listed[0]["public_key"] == old
    assert_verifies(listed[0]["ocmf"], listed[0]["public_key"])
    current = await records(control, f"?key={meter.signer.fingerprint}")
    assert len(current) == 1 and current[0]["archived"] is False


async def test_factory_reset_bad_input(control: Client) -> None:
    await json_error(await control.post(f"{METER}/factory-reset", json={"keep": True}), 400, "unknown_key", "keep")
    await json_error(await control.post("/api/meters/1ISA0299999999/factory-reset"), 404, "unknown_meter")


# ---- faulty next record ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FAULTY_RECORD_KINDS))
async def test_each_faulty_kind_is_rejected_by_pyocmf_except_fv_1_4(control: Client, twin: Twin, kind: str) -> None:
    meter = twin.slot(S1).meter
    body = await json_ok(await control.put(f"{METER}/next-record", json={"kind": kind}))
    assert body["next_record_fault"] == kind
    charge(meter, twin.clock)
    record = (await records(control))[-1]
    if kind == "fv_1_4":
        assert_verifies(record["ocmf"], record["public_key"])
        assert '"FV":"1.4"' in record["ocmf"]
    else:
        assert pyocmf_rejects(record["ocmf"], record["public_key"])
    assert (await json_ok(await control.get(f"{METER}/next-record")))["next_record_fault"] is None
    charge(meter, twin.clock)
    healthy = (await records(control))[-1]
    assert_verifies(healthy["ocmf"], healthy["public_key"])


async def test_next_record_can_be_cleared_and_bad_kinds_are_400(control: Client, twin: Twin) -> None:
    await json_ok(await control.put(f"{METER}/next-record", json={"kind": "wrong_key"}))
    assert (await json_ok(await control.delete(f"{METER}/next-record")))["next_record_fault"] is None
    body = await json_error(await control.put(f"{METER}/next-record", json={"kind": "nope"}), 400, "bad_value", "kind")
    assert "flipped_byte" in body["known"]
    await json_error(await control.put(f"{METER}/next-record", json={"kind": 3}), 400, "bad_value", "kind")
    await json_error(await control.put(f"{METER}/next-record", json={"k": "x"}), 400, "unknown_key", "k")
    await json_error(await control.put(f"{METER}/next-record", data=b"nope", headers=JSON_TYPE), 400, "bad_json")
    assert twin.slot(S1).meter.next_record_fault is None


def test_records_written_before_public_keys_were_kept_still_load() -> None:
    record = SignedRecord(1, "E", "OCMF|{}|{}", "ab", "t0", "t1", "0", "1", "3059")
    data = record.as_dict()
    assert SignedRecord.from_dict(data) == record
    del data["public_key"]
    assert SignedRecord.from_dict(data).public_key == ""
    memory = RamMemory()
    memory.add_record(record)
    assert memory.history() == [record]
