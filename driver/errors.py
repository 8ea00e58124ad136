"""Exceptions of the meter protocol; their messages are what callers see (fix 4: no "std::exception")."""

from __future__ import annotations


class MeterError(Exception):
    """Any failed exchange with the meter; `str(err)` is a complete human-readable reason."""


class TransportError(MeterError):
    """No HTTP answer at all: connection refused or reset, or the request timed out (fix 5)."""


class UnexpectedStatus(MeterError):
    """The meter answered with a status other than 200 (the only status that counts as success)."""

    def __init__(self, method: str, endpoint: str, status: int, body: str) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.body = body
        detail = f" - body: {body[:300]}" if body else ""
        super().__init__(f"{method} {endpoint} answered {status} (expected 200){detail}")


class UnexpectedBody(MeterError):
    """A 200 answer whose body is not what the meter API promises (non-JSON, wrong types, short RD...)."""

    def __init__(self, endpoint: str, problem: str, body: str = "") -> None:
        self.endpoint = endpoint
        self.problem = problem
        shown = f" (body: {body[:300]})" if body else ""
        super().__init__(f"unexpected response body from {endpoint}: {problem}{shown}")
