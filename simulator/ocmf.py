"""OCMF records: build the payload once, sign those exact bytes (ECDSA P-256, SHA-256, RFC 6979)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

from ecdsa import NIST256p, SigningKey
from ecdsa.util import sigencode_der, sigencode_string

SIGNATURE_ALGORITHM = "ECDSA-secp256r1-SHA256"
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
    """The meter's P-256 key pair."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.public_key_hex = key.get_verifying_key().to_der().hex()
        self.fingerprint = hashlib.sha256(bytes.fromhex(self.public_key_hex)).hexdigest()[:16]

    @classmethod
    def generate(cls) -> Signer:
        return cls(SigningKey.generate(curve=NIST256p))

    @classmethod
    def from_seed(cls, seed: str, serial: str, generation: int = 0) -> Signer:
        """A reproducible key for (seed, serial): scenario runs and golden files stay stable."""
        digest = hashlib.sha256(f"iemdcr-twin|{seed}|{serial}|{generation}".encode()).digest()
        exponent = int.from_bytes(digest, "big") % (NIST256p.order - 1) + 1
        return cls(SigningKey.from_secret_exponent(exponent, curve=NIST256p))

    @classmethod
    def from_pem(cls, pem: str) -> Signer:
        return cls(SigningKey.from_pem(pem))

    def to_pem(self) -> str:
        return self._key.to_pem().decode()

    def sign(self, payload: bytes, encoding: str = "der") -> str:
        """Hex signature over SHA-256 of payload; ``raw`` is r||s as an old firmware emitted."""
        encoder = sigencode_der if encoding == "der" else sigencode_string
        return self._key.sign_deterministic(payload, hashfunc=hashlib.sha256, sigencode=encoder).hex()


@dataclass(frozen=True)
class Reading:
    """One reading of the import register, as it goes into RD."""

    tm: str
    tx: str
    ef: str
    st: str
    rv: str

    def as_dict(self) -> dict[str, str]:
        return {
            "TM": self.tm,
            "TX": self.tx,
            "EF": self.ef,
            "ST": self.st,
            "RV": self.rv,
            "RI": "1-b:1.8.e",
            "RU": "kWh",
            "RT": "DC",
        }


@dataclass(frozen=True)
class UserBlock:
    identified: bool = False
    level: str = "NONE"
    flags: tuple[str, ...] = ()
    id_type: str = "NONE"
    id_data: str = ""


@dataclass(frozen=True)
class RecordContent:
    """Everything one transaction record states."""

    gateway_id: str
    serial: str
    firmware: str
    vendor: str
    model: str
    ct: str
    ci: str
    user: UserBlock
    pagination: int
    tariff: str
    begin: Reading
    end: Reading
    fv: str = "1.0"
    extra: dict[str, str] = field(default_factory=dict)


def build_payload(content: RecordContent) -> str:
    """Compact JSON in the IEM-DCR key order."""
    payload: dict[str, object] = {
        "FV": content.fv,
        "GI": content.gateway_id,
        "GS": content.serial,
        "GV": content.firmware,
        "MV": content.vendor,
        "MM": content.model,
        "MS": content.serial,
        "CT": content.ct,
        "CI": content.ci,
        "IS": content.user.identified,
        "IL": content.user.level,
        "IF": list(content.user.flags),
        "IT": content.user.id_type,
        "ID": content.user.id_data,
        "PG": f"T{content.pagination}",
    }
    if content.tariff:
        payload["TT"] = content.tariff
    payload["RD"] = [content.begin.as_dict(), content.end.as_dict()]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def sign_record(content: RecordContent, signer: Signer, encoding: str = "der", fault: str | None = None) -> str:
    """The complete ``OCMF|payload|signature`` string; ``fault`` makes it faulty in a named way."""
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
    return f"OCMF|{payload}|{section}"


def _apply_content_fault(content: RecordContent, fault: str | None) -> RecordContent:
    if fault == "status_not_good":
        return replace(content, end=replace(content.end, st="E"))
    if fault == "error_flag":
        return replace(content, end=replace(content.end, ef="E"))
    if fault == "end_below_begin":
        return replace(content, begin=replace(content.begin, rv=_plus_one_wh(content.end.rv)))
    if fault == "end_time_before_begin":
        return replace(
            content,
            begin=replace(content.begin, tm=content.end.tm),
            end=replace(content.end, tm=content.begin.tm),
        )
    if fault == "fv_1_4":
        return replace(content, fv="1.4")
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
