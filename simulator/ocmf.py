"""OCMF records: build the payload once, sign those exact bytes (ECDSA P-256, SHA-256, RFC 6979) (ocmf.md).

Names: a field that holds the value of an OCMF field carries that field's name verbatim (``Reading.TM``,
``RecordContent.GI``), as OCMF writes it; everything OCMF does not name is snake_case.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

# ecdsa ships no type information (no py.typed, no stubs on PyPI): these two imports are its only way in, and
# every value that leaves it below is given its type where it is returned.
from ecdsa import NIST256p, SigningKey  # type: ignore[import-untyped]
from ecdsa.util import sigencode_der, sigencode_string  # type: ignore[import-untyped]

SIGNATURE_ALGORITHM = "ECDSA-secp256r1-SHA256"
OCMF_PREFIX = "OCMF|"  # every record begins so (ocmf.md §1)
FAULTY_RECORD_KINDS: dict[str, str] = {
    "wrong_key": "signed with a key other than the meter's",
    "flipped_byte": "one payload byte flipped after signing",
    "raw_signature": "raw r||s signature instead of DER",
    "status_not_good": "end reading ST is not G",
    "error_flag": "end reading EF is E",
    "end_below_begin": "end register value below the begin value",
    "end_time_before_begin": "end time before begin time",
    "fv_1_4": "FV 1.4 (rejected by the Transparenzsoftware 1.4.1 only; pyocmf 0.6.0 accepts it)",
}


class Signer:
    """The meter's P-256 key pair (meter-api.md §5): ``public_key_hex`` is the DER SubjectPublicKeyInfo as hex,
    ``fingerprint`` the first 16 hex digits of its SHA-256."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        der: bytes = key.get_verifying_key().to_der()
        self.public_key_hex = der.hex()
        self.fingerprint = hashlib.sha256(der).hexdigest()[:16]

    @classmethod
    def generate(cls) -> Signer:
        """A new random key (a factory-new meter without a seed)."""
        return cls(SigningKey.generate(curve=NIST256p))

    @classmethod
    def from_seed(cls, seed: str, serial: str, generation: int = 0) -> Signer:
        """A reproducible key for (seed, serial, generation): scenario runs and golden files stay stable."""
        digest = hashlib.sha256(f"iemdcr-twin|{seed}|{serial}|{generation}".encode()).digest()
        order: int = NIST256p.order
        exponent = int.from_bytes(digest, "big") % (order - 1) + 1
        return cls(SigningKey.from_secret_exponent(exponent, curve=NIST256p))

    @classmethod
    def from_pem(cls, pem: str) -> Signer:
        """The key kept in non-volatile memory (``to_pem``'s text); ecdsa raises on a malformed PEM."""
        return cls(SigningKey.from_pem(pem))

    def to_pem(self) -> str:
        """The private key as PEM text, for non-volatile memory."""
        pem: bytes = self._key.to_pem()
        return pem.decode()

    def sign(self, payload: bytes, encoding: str = "der") -> str:
        """Hex signature over SHA-256 of payload (ocmf.md §2); ``raw`` is r||s as an old firmware emitted."""
        encoder = sigencode_der if encoding == "der" else sigencode_string
        signature: bytes = self._key.sign_deterministic(payload, hashfunc=hashlib.sha256, sigencode=encoder)
        return signature.hex()


@dataclass(frozen=True)
class Reading:
    """One reading of the import register as it goes into RD (ocmf.md §3): TM with its status letter, TX (B, or
    the end reason E, A or P), EF, ST, RV in kWh as 8.3 digits (``00000446.540``), RI, RU, RT."""

    TM: str
    TX: str
    EF: str
    ST: str
    RV: str
    RI: str = "1-b:1.8.e"
    RU: str = "kWh"
    RT: str = "DC"

    def as_dict(self) -> dict[str, str]:
        """The reading's keys in the IEM-DCR order (ocmf.md §3)."""
        return {
            "TM": self.TM,
            "TX": self.TX,
            "EF": self.EF,
            "ST": self.ST,
            "RV": self.RV,
            "RI": self.RI,
            "RU": self.RU,
            "RT": self.RT,
        }


@dataclass(frozen=True, kw_only=True)
class RecordContent:
    """Everything one transaction record states, field for field in the payload's order (ocmf.md §3).

    ``PG`` is ``T<n>``; ``TT`` is omitted from the payload when empty; ``RD`` is (begin, end).
    """

    FV: str = "1.0"
    GI: str
    GS: str
    GV: str
    MV: str
    MM: str
    MS: str
    CT: str
    CI: str
    IS: bool
    IL: str
    IF: tuple[str, ...]
    IT: str
    ID: str
    PG: str
    TT: str = ""
    RD: tuple[Reading, Reading]


def build_payload(content: RecordContent) -> str:
    """Compact ASCII JSON in the IEM-DCR key order (ocmf.md §3): the exact text that is signed."""
    payload: dict[str, object] = {
        "FV": content.FV,
        "GI": content.GI,
        "GS": content.GS,
        "GV": content.GV,
        "MV": content.MV,
        "MM": content.MM,
        "MS": content.MS,
        "CT": content.CT,
        "CI": content.CI,
        "IS": content.IS,
        "IL": content.IL,
        "IF": list(content.IF),
        "IT": content.IT,
        "ID": content.ID,
        "PG": content.PG,
    }
    if content.TT:
        payload["TT"] = content.TT
    payload["RD"] = [reading.as_dict() for reading in content.RD]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def sign_record(content: RecordContent, signer: Signer, encoding: str = "der", fault: str | None = None) -> str:
    """The complete ``OCMF|payload|signature`` string (ocmf.md §1-§2); ``fault`` (a key of
    ``FAULTY_RECORD_KINDS``, else ``ValueError``) makes it faulty in that named way (ocmf.md §5)."""
    if fault is not None and fault not in FAULTY_RECORD_KINDS:
        raise ValueError(f"unknown faulty record kind {fault!r}")
    content = _apply_content_fault(content, fault)
    payload = build_payload(content)
    if fault == "raw_signature":
        encoding = "raw"
    key = Signer.generate() if fault == "wrong_key" else signer
    signature = key.sign(payload.encode("ascii"), encoding)
    if fault == "flipped_byte":
        payload = _flip_one_byte(payload)
    section = json.dumps({"SA": SIGNATURE_ALGORITHM, "SD": signature}, separators=(",", ":"))
    return f"{OCMF_PREFIX}{payload}|{section}"


def payload_of(record: str) -> dict[str, Any] | None:
    """The payload section of an ``OCMF|payload|signature`` string as a JSON object (ocmf.md §1), or None when
    ``record`` does not start with ``OCMF|`` followed by a JSON object. Read with ``raw_decode``, so a ``|``
    inside a payload string does not cut it short."""
    if not record.startswith(OCMF_PREFIX):
        return None
    try:
        payload, _ = json.JSONDecoder().raw_decode(record, len(OCMF_PREFIX))
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def _apply_content_fault(content: RecordContent, fault: str | None) -> RecordContent:
    begin, end = content.RD
    if fault == "status_not_good":
        return replace(content, RD=(begin, replace(end, ST="E")))
    if fault == "error_flag":
        return replace(content, RD=(begin, replace(end, EF="E")))
    if fault == "end_below_begin":
        return replace(content, RD=(replace(begin, RV=_plus_one_wh(end.RV)), end))
    if fault == "end_time_before_begin":
        return replace(content, RD=(replace(begin, TM=end.TM), replace(end, TM=begin.TM)))
    if fault == "fv_1_4":
        return replace(content, FV="1.4")
    return content


def _plus_one_wh(rv: str) -> str:
    """A begin value 1 Wh above the end value, so the end is below the begin."""
    integer, _, decimals = rv.partition(".")
    milli = (int(integer) * 1000 + int(decimals) + 1) % 10**11  # Wh, within the register's 8.3 digits
    return f"{milli // 1000:08d}.{milli % 1000:03d}"


def _flip_one_byte(payload: str) -> str:
    """Change one digit of the end reading's RV, so the JSON stays valid but the signature fails."""
    index = payload.rfind('"RV":"') + len('"RV":"')
    digit = payload[index]
    flipped = "1" if digit != "1" else "2"
    return payload[:index] + flipped + payload[index + 1 :]
