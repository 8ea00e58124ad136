"""Validation of meter API request bodies: one place for every 400 the meter gives."""

from __future__ import annotations

from typing import Any

from .errors import bad_request

OCMF_LEVELS = (
    "NONE",
    "HEARSAY",
    "TRUSTED",
    "VERIFIED",
    "CERTIFIED",
    "SECURE",
    "MISMATCH",
    "INVALID",
    "OUTDATED",
    "UNKNOWN",
)
OCMF_FLAGS = (
    "RFID_NONE",
    "RFID_PLAIN",
    "RFID_RELATED",
    "RFID_PSK",
    "OCPP_NONE",
    "OCPP_RS",
    "OCPP_AUTH",
    "OCPP_RS_TLS",
    "OCPP_AUTH_TLS",
    "OCPP_CACHE",
    "OCPP_WHITELIST",
    "OCPP_CERTIFIED",
    "ISO15118_NONE",
    "ISO15118_PNC",
    "PLMN_NONE",
    "PLMN_RING",
    "PLMN_SMS",
)
OCMF_ID_TYPES = (
    "NONE",
    "DENIED",
    "UNDEFINED",
    "ISO14443",
    "ISO15693",
    "EMAID",
    "EVCCID",
    "EVCOID",
    "ISO7812",
    "CARD_TXN_NR",
    "CENTRAL",
    "CENTRAL_1",
    "CENTRAL_2",
    "LOCAL",
    "LOCAL_1",
    "LOCAL_2",
    "PHONE_NUMBER",
    "KEY_CODE",
)


def require(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise bad_request("missing_key", f"the body must contain {key}")
    return body[key]


def text(body: dict[str, Any], key: str, min_len: int, max_len: int, *, required: bool = True) -> str:
    """A string of bounded length with no ``|`` (it would break the OCMF sections)."""
    if not required and key not in body:
        return ""
    value = require(body, key)
    if not isinstance(value, str):
        raise bad_request("bad_type", f"{key} must be a string")
    if not min_len <= len(value) <= max_len:
        raise bad_request("bad_value", f"{key} must have {min_len} to {max_len} characters, has {len(value)}")
    if "|" in value:
        raise bad_request("bad_value", f"{key} must not contain '|'")
    if not value.isascii() or not value.isprintable():
        raise bad_request("bad_value", f"{key} must be printable ASCII")
    return value


def flag(body: dict[str, Any], key: str) -> bool:
    value = require(body, key)
    if not isinstance(value, bool):
        raise bad_request("bad_type", f"{key} must be true or false")
    return value


def text_list(body: dict[str, Any], key: str, max_items: int, max_len: int) -> tuple[str, ...]:
    value = require(body, key)
    if not isinstance(value, list):
        raise bad_request("bad_type", f"{key} must be a list of strings")
    if len(value) > max_items:
        raise bad_request("bad_value", f"{key} must have at most {max_items} entries")
    return tuple(text({key: item}, key, 0, max_len) for item in value)


def transaction_kind(body: dict[str, Any]) -> str:
    value = require(body, "TX")
    if not isinstance(value, str):
        raise bad_request("bad_type", "TX must be a string, B or E")
    if value not in ("B", "E"):
        raise bad_request("bad_tx", f"TX must be B or E, got {value[:20]!r}")
    return value
