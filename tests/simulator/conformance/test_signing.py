"""Signed reports: round trip, tampering, pinned signers, malformed documents, the lab key file."""

from __future__ import annotations

import copy
import stat
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from iemdcr_twin.simulator.conformance.signing import (
    KEY_FILE,
    PUBLIC_FILE,
    fingerprint,
    load_or_create_key,
    parse_pinned_key,
    sign_report,
    verify_document,
)

REPORT: dict[str, Any] = {"format": "iemdcr-conformance/1", "verdict": "PASS", "checks": [{"id": "x", "n": 1.5}]}


def test_round_trip_embeds_key_and_fingerprint() -> None:
    key = SigningKey.generate()
    document = sign_report(REPORT, key)
    public = key.verify_key.encode()
    assert document["signature"]["public_key"] == public.hex()
    assert document["signature"]["fingerprint"] == fingerprint(public)
    result = verify_document(document)
    assert (result.valid, result.fingerprint) == (True, fingerprint(public))


def test_any_change_to_the_report_is_detected() -> None:
    document = sign_report(REPORT, SigningKey.generate())
    tampered = copy.deepcopy(document)
    tampered["report"]["verdict"] = "FAIL"
    result = verify_document(tampered)
    assert not result.valid and "altered" in result.reason


def test_a_swapped_key_fails_on_the_fingerprint_or_signature() -> None:
    document = sign_report(REPORT, SigningKey.generate())
    other = SigningKey.generate().verify_key.encode()
    swapped = copy.deepcopy(document)
    swapped["signature"]["public_key"] = other.hex()
    assert not verify_document(swapped).valid
    swapped["signature"]["fingerprint"] = fingerprint(other)
    assert not verify_document(swapped).valid


def test_pinning_by_key_or_fingerprint() -> None:
    key = SigningKey.generate()
    document = sign_report(REPORT, key)
    public = key.verify_key.encode()
    assert verify_document(document, public).valid
    assert verify_document(document, fingerprint(public)).valid
    stranger = SigningKey.generate().verify_key.encode()
    result = verify_document(document, stranger)
    assert not result.valid and "not by the expected signer" in result.reason
    assert parse_pinned_key(public.hex().upper()) == public
    assert parse_pinned_key(fingerprint(public)) == fingerprint(public)


def test_malformed_documents_are_invalid_with_a_reason() -> None:
    assert "not a signed" in verify_document([1, 2]).reason
    assert "not a signed" in verify_document({"report": {}}).reason
    bad_alg = {"report": {}, "signature": {"algorithm": "RSA"}}
    assert "algorithm" in verify_document(bad_alg).reason
    bad_hex = {"report": {}, "signature": {"algorithm": "Ed25519", "public_key": "zz", "value": "00"}}
    assert "malformed" in verify_document(bad_hex).reason


def test_lab_key_is_created_private_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / KEY_FILE
    key, created = load_or_create_key(path)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / "state" / PUBLIC_FILE).read_text().strip() == key.verify_key.encode().hex()
    again, created_again = load_or_create_key(path)
    assert not created_again and again.encode() == key.encode()


def test_keys_outside_the_signed_report_are_refused_by_name() -> None:
    document = sign_report(REPORT, SigningKey.generate())
    beside = {"verdict": "PASS", "note": "all checks passed", **document}
    result = verify_document(beside)
    assert not result.valid and "unknown key 'verdict'" in result.reason
    inside = copy.deepcopy(document)
    inside["signature"]["comment"] = "reviewed"
    result = verify_document(inside)
    assert not result.valid and "unknown key signature.'comment'" in result.reason


def test_signature_hex_must_be_lowercase_for_every_field() -> None:
    document = sign_report(REPORT, SigningKey.generate())
    for name in ("fingerprint", "value", "public_key"):
        upper = copy.deepcopy(document)
        upper["signature"][name] = upper["signature"][name].upper()
        result = verify_document(upper)
        assert not result.valid, name
        assert f"signature.{name}" in result.reason and "lowercase hex" in result.reason, result.reason
