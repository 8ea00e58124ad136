"""Ed25519 signatures over conformance reports, so a report handed to a third party can be checked.

The signed bytes are the report's canonical JSON (sorted keys, compact, UTF-8); the signature block carries
the public key and its fingerprint (first 16 hex digits of SHA-256 over the raw 32-byte key, as the meter's
key fingerprints are made).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.encoding import HexEncoder
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from iemdcr_twin.simulator import json_depth

ALGORITHM = "Ed25519"
KEY_FILE = "lab-ed25519.key"
PUBLIC_FILE = "lab-ed25519.pub"
DOCUMENT_KEYS = ("report", "signature")
SIGNATURE_KEYS = ("algorithm", "public_key", "fingerprint", "value")
HEX_FIELDS = {"public_key": 64, "fingerprint": 16, "value": 128}  # lowercase hex digits, as sign_report writes


class SigningError(ValueError):
    """A key or signed document that cannot be used; the message names the file."""


class DuplicateKey(SigningError):
    """A signed document with a key given twice in one object: the signature covers the report as parsed
    (the last value counting), so a duplicate could change what a reader sees without breaking it."""


def parse_document(text: str) -> Any:
    """A signed report's JSON text parsed; DuplicateKey naming the key when any object has a key twice
    (``ValueError`` when it is not JSON)."""
    try:
        return json.loads(text, object_pairs_hook=json_depth.unique_keys)
    except json_depth.DuplicateKey as exc:
        raise DuplicateKey(
            f"the key {exc.key[:100]!r} appears twice in one object; a signed report gives each key once "
            "(a key added after signing would change what a reader sees without breaking the signature)"
        ) from None


def canonical(report: Any) -> bytes:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def load_or_create_key(path: Path) -> tuple[SigningKey, bool]:
    """The lab key in ``path`` (hex seed); created (mode 0600, public key beside it) when missing."""
    if path.exists():
        try:
            text = path.read_text().strip()
            return SigningKey(text.encode(), encoder=HexEncoder), False
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise SigningError(f"{path}: not an Ed25519 key file (64 hex digits): {exc}") from None
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.encode(HexEncoder).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    path.with_name(PUBLIC_FILE if path.name == KEY_FILE else path.name + ".pub").write_text(
        key.verify_key.encode(HexEncoder).decode() + "\n"
    )
    return key, True


def sign_report(report: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    public = key.verify_key.encode()
    signature = key.sign(canonical(report)).signature
    return {
        "report": report,
        "signature": {
            "algorithm": ALGORITHM,
            "public_key": public.hex(),
            "fingerprint": fingerprint(public),
            "value": signature.hex(),
        },
    }


@dataclass(frozen=True)
class Verification:
    valid: bool
    fingerprint: str | None
    reason: str


def verify_document(document: Any, pinned: bytes | str | None = None) -> Verification:
    """Check a signed report; ``pinned`` is the expected public key (32 bytes) or its fingerprint (hex)."""
    if not isinstance(document, dict) or not isinstance(document.get("signature"), dict) or "report" not in document:
        return Verification(False, None, "not a signed conformance report (needs 'report' and 'signature')")
    block = document["signature"]
    unknown = _unknown_key(document, DOCUMENT_KEYS, "") or _unknown_key(block, SIGNATURE_KEYS, "signature.")
    if unknown is not None:
        return Verification(False, None, unknown)
    if block.get("algorithm") != ALGORITHM:
        return Verification(False, None, f"unsupported signature algorithm {block.get('algorithm')!r}")
    for name, digits in HEX_FIELDS.items():
        value = block.get(name)
        if not (isinstance(value, str) and len(value) == digits and _is_hex(value)):
            return Verification(
                False,
                None,
                f"malformed signature.{name}: {digits} lowercase hex digits required (as the report writer emits "
                f"them), got {str(value)[:100]!r}",
            )
    try:
        public = bytes.fromhex(block["public_key"])
        signature = bytes.fromhex(block["value"])
        verify_key = VerifyKey(public)
    except (ValueError, TypeError) as exc:
        return Verification(False, None, f"malformed public key or signature: {exc}")
    print_ = fingerprint(public)
    if block.get("fingerprint") != print_:
        return Verification(False, print_, "the embedded fingerprint does not match the embedded public key")
    if pinned is not None:
        expected = pinned if isinstance(pinned, str) else fingerprint(pinned)
        if expected.lower() != print_:
            return Verification(False, print_, f"signed by {print_}, not by the expected signer {expected.lower()}")
    try:
        verify_key.verify(canonical(document["report"]), signature)
    except (BadSignatureError, ValueError):
        return Verification(False, print_, "the signature does not match the report: it was altered or mis-signed")
    return Verification(True, print_, "signature valid")


def _unknown_key(block: dict[str, Any], known: tuple[str, ...], where: str) -> str | None:
    """The refusal of a key outside ``known`` (nothing outside the signed report may add to what a reader sees)."""
    allowed = ", ".join(where + name for name in known)
    for key in block:
        if key not in known:
            return (
                f"unknown key {where}{str(key)[:100]!r}: a signed report has only {allowed} "
                "(text outside the signed report is not covered by the signature)"
            )
    return None


def parse_pinned_key(text: str) -> bytes | str:
    """A public key as 64 hex digits (or raw 32 bytes in a file), or a 16-hex-digit fingerprint; nothing else."""
    value = text.lower()
    if len(value) == 64 and _is_hex(value):
        return bytes.fromhex(value)
    if len(value) == 16 and _is_hex(value):
        return value
    raise SigningError("expected an Ed25519 public key (64 hex digits) or its fingerprint (16 hex digits)")


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)
