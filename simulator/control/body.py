"""Control request bodies and queries: the one place they are read and checked (control-api.md §2).

A body is one JSON object (at most ``MAX_CONTROL_BODY`` bytes, nested at most ``MAX_JSON_DEPTH`` levels) that
its route's JSON Schema accepts (``simulator/schemas.py``, ``CONTROL_BODIES``: the same schemas the OpenAPI
document publishes). Every refusal is a ControlError 400 whose message names the key. Route-specific rules
that no schema states (fault names in the path, record selectors in the query) live with their route.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.json_depth import MAX_JSON_DEPTH, nesting_exceeds, not_json_message
from iemdcr_twin.simulator.limits import BodyTimeout
from iemdcr_twin.simulator.limits import read_body as read_body_within
from iemdcr_twin.simulator.schemas import CONTROL_BODIES, first_problem, whole_numbers


async def read_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``{}`` for an empty body when ``optional``.

    400 ``bad_json`` (not valid JSON, with the parser's position; not an object; a key twice in one object;
    too deep) or ``incomplete_body`` (the client left); 408 ``request_timeout`` when the body is still
    incomplete after ``--idle-timeout`` (``limits.read_body``; the connection is then closed).
    """
    try:
        raw = await read_body_within(request)
    except BodyTimeout as exc:
        raise ControlError(408, "request_timeout", str(exc)) from None
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
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except DuplicateKey as exc:
        raise ControlError(400, "bad_json", str(exc)) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        raise ControlError(400, "bad_json", not_json_message(exc)) from None
    if not isinstance(body, dict):
        raise ControlError(400, "bad_json", f"the body must be a JSON object, not {_JSON_KINDS[type(body)]}")
    return body


class DuplicateKey(ValueError):
    """A JSON object with one key twice: JSON leaves its meaning open (RFC 8259 §4), so the control API refuses
    it rather than silently keep the last value."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' ``object_pairs_hook``: the object, or DuplicateKey naming the key given twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"the key {key[:100]!r} appears twice in one object of the body; give each key once")
        result[key] = value
    return result


_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false"}
_JSON_KINDS[type(None)] = "null"


async def read_valid(request: web.Request, body: str, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, checked against the control body schema ``body`` (a name of
    ``schemas.CONTROL_BODIES``, e.g. ``"Load"``); ``{}`` for an empty body when ``optional``.

    400 as ``read_body``, or with the code of the schema's first problem (``bad_type``, ``bad_value``,
    ``unknown_key``, ``missing_key``, ``bad_switch``, ``bad_mode``...) and a message naming the key. Integers
    written with a zero fraction (``5.0``) come back as ints (``schemas.whole_numbers``).
    """
    data = await read_body(request, optional=optional)
    check(data, CONTROL_BODIES[body])
    return dict(whole_numbers(CONTROL_BODIES[body], data))


def check(data: Any, schema: dict[str, Any]) -> None:
    """400 ControlError for the first problem of ``data`` against ``schema`` (schemas.first_problem)."""
    problem = first_problem(schema, data)
    if problem is not None:
        raise ControlError(400, problem.code, problem.message(), **problem.extra)


MAX_QUERY_INT = 10**18 - 1
"""The largest whole number a query parameter takes (``since``, ``limit``; the OpenAPI document's maximum)."""


def query_int(request: web.Request, key: str, default: int | None) -> int | None:
    """The query parameter ``key`` as a whole number from 0 to MAX_QUERY_INT (ASCII digits only); ``default``
    when absent.

    400 ``bad_query`` otherwise, naming the range: ``int()`` alone would take Unicode digits, spaces, ``_`` and
    ``+``, and a number of thousands of digits costs ``int()`` time before it is refused.
    """
    raw = request.query.get(key)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw.lstrip("0")) <= len(str(MAX_QUERY_INT))):
        raise ControlError(
            400, "bad_query", f"{key} must be a whole number from 0 to {MAX_QUERY_INT} (ASCII digits), got {raw[:20]!r}"
        )
    return int(raw)
