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
        """The error body every non-200 answer has: ``{"error": code, "message": text}`` (meter-api.md §1)."""
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str) -> Refusal:
    """A 400: the request itself is malformed (meter-api.md §1)."""
    return Refusal(400, code, message)


def precondition(code: str, message: str) -> Refusal:
    """A 428: a well-formed request the meter's state does not allow now (meter-api.md §3)."""
    return Refusal(428, code, message)


class StorageError(Refusal):
    """Non-volatile memory could not be written: the change was not made (meter-api.md §1, 503 ``storage_error``).

    Raised by a ``Memory`` (``simulator.store`` maps every ``OSError`` of a write to it) before the model commits
    anything, so the request that needed the write is refused and the meter stays as it was. It is a
    ``Refusal``: the meter API answers it like any other; the control API maps it in its error middleware.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(503, "storage_error", message)
        self.path = path  # the file that could not be written, for logs and the CLI (not for HTTP clients)
