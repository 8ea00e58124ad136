"""Record history on the control API: JSON list, S.A.F.E. XML read back by pyocmf, faulty next records, reset."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from ecdsa import VerifyingKey
from pyocmf import OcmfContainer

from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model import RamMemory, SignedRecord
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS
from tests.support.http import JSON_TYPE, json_error, json_ok
from tests.support.meter import assert_verifies, charge, pyocmf_rejects
from tests.support.twin import S1

Client = TestClient[Any, Any]
METER = f"/api/meters/{S1}"


async def records(control: Client, query: str = "") -> list[dict[str, Any]]:
    body = await json_ok(await control.get(f"{METER}/records{query}"))
    result: list[dict[str, Any]] = body["records"]
    return result


async def test_records_list_newest_last_with_readings_and_key(control: Client, twin: Twin) -> None:
    meter = twin.slot(S1).meter
    assert await records(control) == []
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    charge(meter, twin.clock, current=50.0, seconds=1200, init=True)
    listed = await records(control)
    assert [r["PG"] for r in listed] == ["T1", "T2"]
    last = listed[-1]
    assert last["reason"] == "E" and last["archived"] is False
    assert last["fingerprint"] == meter.signer.fingerprint
    assert last["public_key"] == meter.signer.public_key_hex
    assert last["end"]["RV"] > last["begin"]["RV"] and last["end"]["TM"] > last["begin"]["TM"]
    assert last["ocmf"] == meter.registers.last_transaction
    parsed = assert_verifies(last["ocmf"], last["public_key"])
    assert parsed.payload.PG == "T2"
    assert [r["PG"] for r in await records(control, "?pg=T1")] == ["T1"]


# ---- the S.A.F.E. export and the Transparenzsoftware's reading rules -------------------------------------
# The tool (SAFE-eV/transparenzsoftware 1.4.1) is not available in CI; these are its rules as read from its source
# and confirmed by running it (docs/safe-export.md):
# - InputReader unmarshals <values> into Value objects: attributes transactionId (a BigInteger) and context, child
#   elements signedData (format: a VerificationType name, encoding: an EncodingType code, text non-empty) and
#   publicKey (encoding, text; the tool decodes only DER keys).
# - ValueMapBuilder groups the values by transactionId; values without one stay apart.
# - The command line (ConsoleFileProcessor) first verifies every value on its own; then for each group of one
#   value it clears that list and keeps only the group's result, and a larger group adds one transaction result.
# - The window (MainViewWestPanel) opens on the group with the lowest transactionId if there is one and checks it
#   with Verifier.verifyTransaction (exactly one Transaction.Begin and one Transaction.End, else error 1706 "no
#   start value", 1707 "no stop value", ...); without any group it opens on the first value and verifies it alone.
TSW_FORMATS = {"OCMF", "PCDF", "ISA_EDL_40_P", "ALFEN", "EDL_40_P", "EDL_40_SIG", "EDL_40_MENNEKES"}
TSW_ENCODINGS = {"base64", "base32", "plain", "hex"}


@dataclass
class TswReading:
    """What the Transparenzsoftware 1.4.1 makes of a container, by its rules above."""

    ocmf: list[str]  # signedData text of each <value>, in file order
    keys: list[str]  # publicKey text of each <value>
    groups: dict[int, list[int]]  # value indices by transactionId
    cli_results: list[str]  # what the command line reports: "value <i>" or "transaction <id>"
    window_opens_on: str  # "value <i>" or "transaction <id>"
    window_error: str | None  # verifyTransaction's refusal of that transaction, if any


def tsw_read(xml: bytes) -> TswReading:
    root = ET.fromstring(xml)
    assert root.tag == "values"
    values = list(root)
    assert values and all(value.tag == "value" for value in values)
    ocmf: list[str] = []
    keys: list[str] = []
    groups: dict[int, list[int]] = {}
    for index, value in enumerate(values):
        signed = value.find("signedData")
        key = value.find("publicKey")
        assert signed is not None and key is not None and value.find("encodedData") is None
        assert (signed.get("format") or "").strip().upper() in TSW_FORMATS
        assert signed.get("encoding") in TSW_ENCODINGS and key.get("encoding") in TSW_ENCODINGS
        assert (signed.text or "").strip() and (key.text or "").strip()
        ocmf.append((signed.text or "").strip())
        keys.append((key.text or "").strip())
        transaction_id = value.get("transactionId")
        if transaction_id is not None:
            groups.setdefault(int(transaction_id), []).append(index)
    cli_results = [f"value {index}" for index in range(len(values))]
    for transaction_id, members in sorted(groups.items()):
        if len(members) == 1:
            cli_results = [f"value {members[0]}"]
        else:
            cli_results.append(f"transaction {transaction_id}")
    window_opens_on, window_error = "value 0", None
    if groups:
        first = min(groups)
        window_opens_on = f"transaction {first}"
        contexts = [(values[i].get("context") or "").strip() for i in groups[first]]
        begins, ends = contexts.count("Transaction.Begin"), contexts.count("Transaction.End")
        if begins != 1:
            window_error = "no start value" if begins == 0 else "too many start values"
        elif ends != 1:
            window_error = "no stop value" if ends == 0 else "too many stop values"
    return TswReading(ocmf, keys, groups, cli_results, window_opens_on, window_error)


def test_tsw_rules_reproduce_what_the_tool_did_with_one_record_per_transaction_id() -> None:
    """The old export (each record alone under its PG as transactionId, Transaction.End): the tool opened an empty
    transaction and its command line reported the last record only (docs/safe-export.md)."""
    value = '<value transactionId="{}" context="Transaction.End"><signedData format="OCMF" encoding="plain">OCMF|x'
    value += '</signedData><publicKey encoding="hex">3059</publicKey></value>'
    reading = tsw_read(f"<values>{value.format(1)}{value.format(2)}{value.format(3)}</values>".encode())
    assert reading.cli_results == ["value 2"]
    assert (reading.window_opens_on, reading.window_error) == ("transaction 1", "no start value")


async def safe_export(control: Client, **params: str) -> bytes:
    resp = await control.get(f"{METER}/records", params={"format": "safe-xml", **params})
    assert resp.status == 200 and resp.content_type == "application/xml"
    return await resp.read()


async def test_safe_xml_lists_every_record_as_the_transparenzsoftware_reads_it(
    control: Client, twin: Twin, tmp_path: Path
) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    await json_ok(await control.post(f"{METER}/factory-reset"))
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    xml = await safe_export(control)
    reading = tsw_read(xml)
    assert reading.cli_results == ["value 0", "value 1", "value 2"]
    assert (reading.window_opens_on, reading.window_error) == ("value 0", None)
    assert reading.groups == {}
    for record, key in zip(reading.ocmf, reading.keys, strict=True):
        VerifyingKey.from_der(bytes.fromhex(key))  # the tool reads only DER keys
        assert_verifies(record, key)
    assert len(set(reading.keys)) == 2  # the archived record carries the old key
    path = tmp_path / "records.xml"
    path.write_bytes(xml)
    container = OcmfContainer.from_xml(path, strict=True)
    assert [entry.ocmf.payload.PG for entry in container] == ["T1", "T1", "T2"]
    assert [(entry.transaction_id, entry.context) for entry in container] == [(None, None)] * 3
    assert all(entry.verify_signature() is True for entry in container)
    results = container.check_eichrecht(errors_only=True)
    assert [len(result.records) for result in results] == [1, 1, 1]
    assert all(result.is_compliant for result in results)


async def test_safe_xml_keeps_each_faulty_record_apart_and_rejected(control: Client, twin: Twin) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    for kind in sorted(FAULTY_RECORD_KINDS):
        await json_ok(await control.put(f"{METER}/next-record", json={"kind": kind}))
        charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    reading = tsw_read(await safe_export(control))
    faulty = ["healthy", *sorted(FAULTY_RECORD_KINDS), "healthy"]
    assert reading.cli_results == [f"value {i}" for i in range(len(faulty))] and reading.groups == {}
    for kind, record, key in zip(faulty, reading.ocmf, reading.keys, strict=True):
        if kind in ("healthy", "fv_1_4"):  # FV 1.4: only the Transparenzsoftware refuses it
            assert_verifies(record, key)
        else:
            assert pyocmf_rejects(record, key), kind


async def test_safe_xml_of_one_record(control: Client, twin: Twin, tmp_path: Path) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    xml = await safe_export(control, pg="T2")
    reading = tsw_read(xml)
    assert reading.cli_results == ["value 0"] and reading.window_error is None
    path = tmp_path / "one.xml"
    path.write_bytes(xml)
    container = OcmfContainer.from_xml(path, strict=True)
    assert [entry.ocmf.payload.PG for entry in container] == ["T2"]
    assert container[0].transaction_id is None and container[0].verify_signature() is True


@pytest.mark.parametrize(
    ("query", "status", "code", "word"),
    [
        ("?format=pdf", 400, "bad_query", "format"),
        ("?pg=5", 400, "bad_query", "pg"),
        ("?pg=T01", 400, "bad_query", "pg"),
        ("?pg=T99", 404, "unknown_record", "pg"),
        ("?key=nope", 400, "bad_query", "key"),
        ("?key=0123456789abcdef", 404, "unknown_record", "key"),
    ],
)
async def test_bad_record_queries(control: Client, twin: Twin, query: str, status: int, code: str, word: str) -> None:
    charge(twin.slot(S1).meter, twin.clock, current=50.0, seconds=600.0, init=True)
    await json_error(await control.get(f"{METER}/records{query}"), status, code, word)


@pytest.mark.parametrize("pg", ["T99999999999", "T10000000000", "T01", "5"])
async def test_a_pg_out_of_form_or_range_is_400_naming_both(control: Client, twin: Twin, pg: str) -> None:
    """``T99999999999`` is T and a number, just above the range: the message gives the range and the form."""
    charge(twin.slot(S1).meter, twin.clock, current=50.0, seconds=600.0, init=True)
    body = await json_error(await control.get(f"{METER}/records", params={"pg": pg}), 400, "bad_query")
    assert body["message"] == (
        f"pg must be T followed by a pagination number from 0 to 9999999999 without leading zeros, e.g. T5; got {pg!r}"
    )


async def test_a_pg_at_the_top_of_its_range_is_looked_up(control: Client) -> None:
    await json_error(await control.get(f"{METER}/records?pg=T9999999999"), 404, "unknown_record", "pg")


async def test_factory_reset_archives_old_records_and_restarts_pagination(control: Client, twin: Twin) -> None:
    meter = twin.slot(S1).meter
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    old = meter.signer.public_key_hex
    body = await json_ok(await control.post(f"{METER}/factory-reset", data=b""))
    assert body["archived_records"] == 1 and body["pagination"] == {"next": 1}
    assert body["fingerprint"] != body["previous_fingerprint"]
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    listed = await records(control)
    assert [(r["PG"], r["archived"]) for r in listed] == [("T1", True), ("T1", False)]
    assert listed[0]["public_key"] == old
    assert_verifies(listed[0]["ocmf"], listed[0]["public_key"])
    current = await records(control, f"?key={meter.signer.fingerprint}")
    assert len(current) == 1 and current[0]["archived"] is False


async def test_factory_reset_bad_input(control: Client) -> None:
    body = await json_error(await control.post(f"{METER}/factory-reset", json={"keep": True}), 400, "unknown_key")
    # the body takes no keys at all: said so, not "allowed: " and an empty list
    assert body["message"] == "unknown key 'keep'; the body takes no keys: send {}"
    await json_error(await control.post("/api/meters/1ISA0299999999/factory-reset"), 404, "unknown_meter")


# ---- faulty next record ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FAULTY_RECORD_KINDS))
async def test_each_faulty_kind_is_rejected_by_pyocmf_except_fv_1_4(control: Client, twin: Twin, kind: str) -> None:
    meter = twin.slot(S1).meter
    body = await json_ok(await control.put(f"{METER}/next-record", json={"kind": kind}))
    assert body["next_record_fault"] == kind
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    record = (await records(control))[-1]
    if kind == "fv_1_4":
        assert_verifies(record["ocmf"], record["public_key"])
        assert '"FV":"1.4"' in record["ocmf"]
    else:
        assert pyocmf_rejects(record["ocmf"], record["public_key"])
    assert (await json_ok(await control.get(f"{METER}/next-record")))["next_record_fault"] is None
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
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
    record = SignedRecord(1, "E", "OCMF|{}|{}", "ab", "t0", "t1", "00000000.000", "00000001.000", "3059")
    data = record.as_dict()
    assert SignedRecord.from_dict(data) == record
    del data["public_key"]
    assert SignedRecord.from_dict(data).public_key == ""
    memory = RamMemory()
    memory.add_record(record)
    assert memory.history() == [record]


@pytest.mark.parametrize("key", ["zz", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0"])
async def test_a_key_out_of_form_is_400_naming_the_form(control: Client, twin: Twin, key: str) -> None:
    charge(twin.slot(S1).meter, twin.clock, current=50.0, seconds=600.0, init=True)
    body = await json_error(await control.get(f"{METER}/records", params={"key": key}), 400, "bad_query")
    assert body["message"] == (
        f"key must be a key fingerprint: 16 lowercase hex digits, e.g. 0123456789abcdef; got {key!r}"
    )


async def test_a_well_formed_unknown_key_is_404(control: Client, twin: Twin) -> None:
    charge(twin.slot(S1).meter, twin.clock, current=50.0, seconds=600.0, init=True)
    await json_error(await control.get(f"{METER}/records?key=0123456789abcdef"), 404, "unknown_record", "key")


@pytest.mark.parametrize(
    "query",
    ["pg=T1&pg=T2", "key=0123456789abcdef&key=0123456789abcdef", "format=json&format=safe-xml", "pg=T1&pg=T1"],
)
async def test_a_query_parameter_given_twice_is_400_naming_it(control: Client, twin: Twin, query: str) -> None:
    charge(twin.slot(S1).meter, twin.clock, current=50.0, seconds=600.0, init=True)
    name = query.split("=", 1)[0]
    body = await json_error(await control.get(f"{METER}/records?{query}"), 400, "bad_query")
    assert body["message"] == f"{name} is given 2 times; give it at most once"
