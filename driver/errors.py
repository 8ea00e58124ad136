"""Exceptions of the meter protocol; their messages are what callers see (fix 4: no "std::exception").

They take the place of the C++ module's HttpClientError, UnexpectedIemDcrResponseCode and
UnexpectedIemDcrResponseBody (`main/isabellenhuetteIemDcrController.hpp`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

# Statuses that describe a state that can change, so asking again may succeed (fix 15): 425 signature_pending,
# 428 a precondition such as the activation threshold, and any 5xx. Every other status is the meter refusing the
# request itself; asking again gives the same answer.
RETRYABLE_STATUSES = frozenset({425, 428})


class MeterError(Exception):
    """Any failed exchange with the meter; `str(err)` is a complete human-readable reason."""

    @property
    def retryable(self) -> bool:
        """Whether asking again may succeed (fix 15): transport failures and changeable states only."""
        return True


class TransportError(MeterError):
    """No HTTP answer at all: connection refused or reset, or the request timed out (fix 5)."""


class UnexpectedStatus(MeterError):
    """The meter answered with a status other than 200 (the only status that counts as success).

    `code` and `detail` are the meter's `{"error": code, "message": text}` when its body has that shape (the
    twin's, meter-api.md §2; a real meter's bodies are not public), and `field` is the request key the detail
    names, e.g. `ID` for `ID must have 0 to 64 characters, has 70`.
    """

    def __init__(self, method: str, endpoint: str, status: int, body: str, sent_keys: Iterable[str] = ()) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.body = body
        self.code, self.detail = _error_body(body)
        self.field = _named_field(self.detail, sent_keys)
        text = f"{method} {endpoint} answered {status} (expected 200)"
        if self.code or self.detail:
            text += f": {self.code}" + (f" - {self.detail}" if self.detail else "")
        elif body:
            text += f" - body: {body[:300]}"
        if self.field:
            text += f" (field {self.field})"
        if not self.retryable:
            text += "; not retried: the meter refuses the request itself"
        super().__init__(text)

    @property
    def retryable(self) -> bool:
        """True for 425, 428 and 5xx: states that can change; any other status is a refusal (fix 15)."""
        return self.status in RETRYABLE_STATUSES or 500 <= self.status <= 599


class UnexpectedBody(MeterError):
    """A 200 answer whose body is not what the meter API promises (non-JSON, wrong types, short RD...).

    Retried like a transport failure: a garbled answer says nothing about the request.
    """

    def __init__(self, endpoint: str, problem: str, body: str = "") -> None:
        self.endpoint = endpoint
        self.problem = problem
        shown = f" (body: {body[:300]})" if body else ""
        super().__init__(f"unexpected response body from {endpoint}: {problem}{shown}")


def _error_body(body: str) -> tuple[str, str]:
    try:
        data = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    code, detail = data.get("error"), data.get("message")
    return (code if isinstance(code, str) else "")[:100], (detail if isinstance(detail, str) else "")[:300]


def _named_field(detail: str, sent_keys: Iterable[str]) -> str:
    """The first key of the request body that the meter's message names as a word."""
    for key in sent_keys:
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(key)}(?![A-Za-z0-9_])", detail, re.ASCII):
            return key
    return ""
