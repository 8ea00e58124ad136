"""Control request bodies and queries: the one place they are read and checked (control-api.md §2).

A body is one JSON object (at most ``MAX_CONTROL_BODY`` bytes, nested at most ``MAX_JSON_DEPTH`` levels); a
key the route does not know is refused, and so is a number of the wrong type or outside its range. Every
refusal is a ControlError 400 whose message names the key. Route-specific rules (fault names, network rules,
record selectors) live with their route and use these helpers.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.json_depth import MAX_JSON_DEPTH, nesting_exceeds


async def read_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``{}`` for an empty body when ``optional``.

    400 ``bad_json`` (not a JSON object, undecodable, too deep) or ``incomplete_body`` (the client left).
    """
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # e.g. a Content-Encoding the body does not match
        raise ControlError(400, "bad_json", "the body could not be decoded") from None
    except (ConnectionResetError, RuntimeError):  # the client left mid-body (aiohttp: "Connection closed.")
        raise ControlError(400, "incomplete_body", "the connection closed before the body arrived") from None
    if not raw.strip() and optional:
        return {}
    if nesting_exceeds(raw):
        raise ControlError(
            400, "bad_json", f"the body must be a JSON object nested at most {MAX_JSON_DEPTH} levels deep"
        )
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise ControlError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "bad_json", "the body must be a JSON object")
    return body


def number(body: dict[str, Any], key: str, low: float, high: float, default: float | None = None) -> float | None:
    """``body[key]`` as a float from ``low`` to ``high``; ``default`` when absent or null.

    400 ``bad_type`` (not a finite number; booleans are not numbers) or ``bad_value`` (out of range).
    """
    if key not in body or body[key] is None:
        return default
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError(400, "bad_type", f"{key} must be a number")
    if not low <= value <= high:
        raise ControlError(400, "bad_value", f"{key} must be from {low:g} to {high:g}")
    return float(value)


def only_keys(body: dict[str, Any], allowed: set[str]) -> None:
    """400 ``unknown_key`` naming the first key of ``body`` outside ``allowed`` (and listing those allowed)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlError(400, "unknown_key", f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def query_int(request: web.Request, key: str, default: int | None) -> int | None:
    """The query parameter ``key`` as a whole number >= 0 (ASCII digits only); ``default`` when absent.

    400 ``bad_query`` otherwise: ``int()`` alone would take Unicode digits, spaces, ``_`` and ``+``.
    """
    raw = request.query.get(key)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ControlError(400, "bad_query", f"{key} must be a whole number >= 0 in ASCII digits, got {raw[:20]!r}")
    return int(raw)
