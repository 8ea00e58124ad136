"""Control request bodies and queries: the one place they are read and checked (control-api.md §2).

A body is one JSON object (at most ``MAX_CONTROL_BODY`` bytes, nested at most ``MAX_JSON_DEPTH`` levels) that
its route's JSON Schema accepts (``simulator/schemas.py``, ``CONTROL_BODIES``: the same schemas the OpenAPI
document publishes). Every refusal is a ControlError 400 whose message names the key. Route-specific rules
that no schema states (fault names in the path, record selectors in the query) live with their route.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.json_depth import BadJson, not_an_object, parse_json
from iemdcr_twin.simulator.limits import UnreadableBody
from iemdcr_twin.simulator.limits import read_body as read_body_within
from iemdcr_twin.simulator.schemas import CONTROL_BODIES, first_problem, whole_numbers


async def read_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``{}`` for an empty body when ``optional``.

    400 ``bad_json`` (not valid JSON, with the parser's position; not an object; a key twice in one object;
    too deep: ``json_depth.parse_json``) or ``incomplete_body`` (the client left); 408 ``request_timeout`` when
    the body is still incomplete after ``--idle-timeout`` (``limits.read_body``; the connection is then closed).
    """
    try:
        raw = await read_body_within(request)
    except UnreadableBody as exc:
        raise ControlError(exc.status, exc.code, str(exc)) from None
    if not raw.strip() and optional:
        return {}
    try:
        body = parse_json(raw, refuse_duplicates=True)
    except BadJson as exc:
        raise ControlError(400, "bad_json", str(exc)) from None
    if not isinstance(body, dict):
        raise ControlError(400, "bad_json", not_an_object(body))
    return body


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
