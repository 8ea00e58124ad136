"""Validation of meter API request bodies: one place for every 400 the meter gives."""

from __future__ import annotations

from typing import Any

from iemdcr_twin.simulator.model.errors import bad_request

# IL/IF/IT values are stored as given (the real meter takes free text); the conformance report judges them.


def require(body: dict[str, Any], key: str) -> Any:
    """``body[key]``; 400 ``missing_key`` when absent (meter-api.md §1)."""
    if key not in body:
        raise bad_request("missing_key", f"the body must contain {key}")
    return body[key]


def text(body: dict[str, Any], key: str, min_len: int, max_len: int, *, required: bool = True) -> str:
    """A printable ASCII string of ``min_len``..``max_len`` characters with no ``|`` (it would break the OCMF
    sections, ocmf.md §1); 400 ``missing_key``, ``bad_type``, ``bad_value``; ``""`` when optional and absent."""
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
    """A JSON boolean; 400 ``missing_key`` or ``bad_type``."""
    value = require(body, key)
    if not isinstance(value, bool):
        raise bad_request("bad_type", f"{key} must be true or false")
    return value


def text_list(body: dict[str, Any], key: str, max_items: int, max_len: int) -> tuple[str, ...]:
    """A list of at most ``max_items`` strings as ``text`` checks them; 400 ``missing_key``, ``bad_type``,
    ``bad_value`` (IF of ``POST user``, meter-api.md §3.7)."""
    value = require(body, key)
    if not isinstance(value, list):
        raise bad_request("bad_type", f"{key} must be a list of strings")
    if len(value) > max_items:
        raise bad_request("bad_value", f"{key} must have at most {max_items} entries")
    return tuple(text({key: item}, key, 0, max_len) for item in value)


def transaction_kind(body: dict[str, Any]) -> str:
    """TX of ``POST receipt``: ``B`` or ``E``; 400 ``missing_key``, ``bad_type``, ``bad_tx`` (meter-api.md §3.6)."""
    value = require(body, "TX")
    if not isinstance(value, str):
        raise bad_request("bad_type", "TX must be a string, B or E")
    if value not in ("B", "E"):
        raise bad_request("bad_tx", f"TX must be B or E, got {value[:20]!r}")
    return value
