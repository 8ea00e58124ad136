"""Typed refusals: the model says *why* it refuses; adapters map them to HTTP."""

from __future__ import annotations


class Refusal(Exception):
    """A request the meter refuses; nothing changed. ``status`` is the meter API's HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def as_body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str) -> Refusal:
    return Refusal(400, code, message)


def precondition(code: str, message: str) -> Refusal:
    return Refusal(428, code, message)
