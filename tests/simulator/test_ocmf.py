"""OCMF records: payload layout, the exact bytes signed, signature encodings, faulty records (ocmf.md)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from ecdsa import BadSignatureError, VerifyingKey
from ecdsa.util import sigdecode_der, sigdecode_string

from iemdcr_twin.simulator.ocmf import (
    FAULTY_RECORD_KINDS,
    Reading,
    RecordContent,
    Signer,
    build_payload,
    payload_of,
    sign_record,
)
from tests.support.meter import PAYLOAD_KEYS, assert_verifies, pyocmf_rejects

SIGNER = Signer.from_seed("tests", "1ISA0200000001")
CONTENT = RecordContent(
    GI="Isabellenhuette IEM-DCR-125-1000-32-00-006-B_000",
    GS="1ISA0200000001",
    GV="DU-02.00.12_SU-02.00.08",
    MV="Isabellenhuette",
    MM="IEM-DCR-125-1000-32-00-006-B_000",
    MS="1ISA0200000001",
    CT="EVSEID",
    CI="DE*ISA*E0001",
    IS=True,
    IL="VERIFIED",
    IF=("RFID_PLAIN",),
    IT="ISO14443",
    ID="04A1B2C3",
    PG="T7",
    TT="0.49 EUR/kWh",
    RD=(
        Reading("2025-06-06T09:26:24,000+0100 I", "B", "", "G", "00000446.540"),
        Reading("2025-06-06T09:32:24,000+0100 I", "E", "", "G", "00000450.540"),
    ),
)


def sections(record: str) -> tuple[str, str, str]:
    head, payload, signature = record.split("|")
    return head, payload, signature


def test_payload_is_compact_json_in_the_iem_dcr_key_order() -> None:
    payload = build_payload(CONTENT)
    assert payload.startswith('{"FV":"1.0","GI":"Isabellenhuette IEM-DCR-125-1000-32-00-006-B_000","GS":"1ISA')
    data = json.loads(payload)
    assert list(data) == PAYLOAD_KEYS
    assert data["PG"] == "T7"
    assert data["IS"] is True and data["IF"] == ["RFID_PLAIN"]
    assert [list(reading) for reading in data["RD"]] == [["TM", "TX", "EF", "ST", "RV", "RI", "RU", "RT"]] * 2
    assert data["RD"][1] == {
        "TM": "2025-06-06T09:32:24,000+0100 I",
        "TX": "E",
        "EF": "",
        "ST": "G",
        "RV": "00000450.540",
        "RI": "1-b:1.8.e",
        "RU": "kWh",
        "RT": "DC",
    }
    assert json.dumps(data, separators=(",", ":")) == payload


def test_empty_tariff_is_omitted() -> None:
    assert "TT" not in json.loads(build_payload(replace(CONTENT, TT="")))


def test_layout_and_signature_section() -> None:
    record = sign_record(CONTENT, SIGNER)
    head, payload, signature = sections(record)
    assert head == "OCMF"
    assert payload == build_payload(CONTENT)
    section = json.loads(signature)
    assert list(section) == ["SA", "SD"]
    assert section["SA"] == "ECDSA-secp256r1-SHA256"
    assert signature == json.dumps(section, separators=(",", ":"))
    assert record.isascii() and "\n" not in record


def test_signature_is_over_sha256_of_the_exact_payload_bytes() -> None:
    record = sign_record(CONTENT, SIGNER)
    _, payload, signature = sections(record)
    key = VerifyingKey.from_der(bytes.fromhex(SIGNER.public_key_hex))
    der = bytes.fromhex(json.loads(signature)["SD"])
    assert key.verify(der, payload.encode("ascii"), hashfunc=hashlib.sha256, sigdecode=sigdecode_der)
    with pytest.raises(BadSignatureError):
        key.verify(der, (payload + " ").encode("ascii"), hashfunc=hashlib.sha256, sigdecode=sigdecode_der)
    assert_verifies(record, SIGNER.public_key_hex)


def test_der_and_raw_encodings() -> None:
    payload = build_payload(CONTENT).encode()
    key = VerifyingKey.from_der(bytes.fromhex(SIGNER.public_key_hex))
    der = bytes.fromhex(SIGNER.sign(payload, "der"))
    raw = bytes.fromhex(SIGNER.sign(payload, "raw"))
    assert der[0] == 0x30 and der[1] == len(der) - 2
    assert len(raw) == 64
    assert key.verify(der, payload, hashfunc=hashlib.sha256, sigdecode=sigdecode_der)
    assert key.verify(raw, payload, hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
    assert sigdecode_der(der, key.curve.order) == sigdecode_string(raw, key.curve.order)


def test_deterministic_with_a_seeded_key() -> None:
    again = Signer.from_seed("tests", "1ISA0200000001")
    assert again.public_key_hex == SIGNER.public_key_hex
    assert sign_record(CONTENT, again) == sign_record(CONTENT, SIGNER)
    assert Signer.from_seed("tests", "1ISA0200000002").public_key_hex != SIGNER.public_key_hex
    assert Signer.from_seed("other", "1ISA0200000001").public_key_hex != SIGNER.public_key_hex
    assert Signer.from_seed("tests", "1ISA0200000001", 1).public_key_hex != SIGNER.public_key_hex


def test_generated_keys_differ_and_survive_pem() -> None:
    first, second = Signer.generate(), Signer.generate()
    assert first.public_key_hex != second.public_key_hex
    restored = Signer.from_pem(first.to_pem())
    assert restored.public_key_hex == first.public_key_hex
    assert restored.sign(b"x") == first.sign(b"x")


def test_public_key_and_fingerprint() -> None:
    der = bytes.fromhex(SIGNER.public_key_hex)
    assert len(der) == 91
    assert SIGNER.public_key_hex.startswith("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    assert SIGNER.fingerprint == hashlib.sha256(der).hexdigest()[:16]
    assert len(SIGNER.fingerprint) == 16


@pytest.mark.parametrize("kind", [kind for kind in FAULTY_RECORD_KINDS if kind != "fv_1_4"])
def test_each_faulty_record_kind_is_rejected_by_pyocmf(kind: str) -> None:
    assert_verifies(sign_record(CONTENT, SIGNER), SIGNER.public_key_hex)
    record = sign_record(CONTENT, SIGNER, fault=kind)
    assert record != sign_record(CONTENT, SIGNER)
    assert record.count("|") == 2
    assert pyocmf_rejects(record, SIGNER.public_key_hex)


def test_fv_1_4_passes_pyocmf() -> None:
    record = sign_record(CONTENT, SIGNER, fault="fv_1_4")
    assert json.loads(sections(record)[1])["FV"] == "1.4"
    assert_verifies(record, SIGNER.public_key_hex)


def test_faulty_kinds_change_what_they_name() -> None:
    def payload(kind: str) -> dict[str, object]:
        return json.loads(sections(sign_record(CONTENT, SIGNER, fault=kind))[1])

    assert payload("status_not_good")["RD"][1]["ST"] != "G"  # type: ignore[index]
    assert payload("error_flag")["RD"][1]["EF"] == "E"  # type: ignore[index]
    below = payload("end_below_begin")["RD"]
    assert below[1]["RV"] < below[0]["RV"]  # type: ignore[index]
    backwards = payload("end_time_before_begin")["RD"]
    assert backwards[1]["TM"] < backwards[0]["TM"]  # type: ignore[index]
    flipped = sections(sign_record(CONTENT, SIGNER, fault="flipped_byte"))[1]
    original = build_payload(CONTENT)
    assert len(flipped) == len(original)
    assert sum(a != b for a, b in zip(flipped, original, strict=True)) == 1
    raw = json.loads(sections(sign_record(CONTENT, SIGNER, fault="raw_signature"))[2])["SD"]
    assert len(raw) == 128


def test_signature_encoding_raw_is_rejected() -> None:
    assert pyocmf_rejects(sign_record(CONTENT, SIGNER, "raw"), SIGNER.public_key_hex)


def test_unknown_faulty_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="gremlin"):
        sign_record(CONTENT, SIGNER, fault="gremlin")


def test_payload_of_reads_back_the_signed_payload() -> None:
    record = sign_record(CONTENT, SIGNER)
    assert payload_of(record) == json.loads(build_payload(CONTENT))


@pytest.mark.parametrize(
    "record", ["", "OCMF", "ocmf|{}|{}", "OCMF|[1]|{}", 'OCMF|{"PG":|{}', "OCMF|" + "[" * 100_000, "XOCMF|{}|{}"]
)
def test_payload_of_is_none_for_what_is_no_record(record: str) -> None:
    assert payload_of(record) is None
