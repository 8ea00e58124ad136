"""Control-plane errors: the one place a failure becomes a status code and ``{"error": code, "message": text}``.

Every success is 200 with JSON; every error is a 4xx (or 503 ``storage_error`` when a change cannot be saved or a
stored record cannot be read) with the twin unchanged (control-api.md §2). Handlers raise; ``error_middleware``
answers.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from iemdcr_twin.simulator.clock import ClockError
from iemdcr_twin.simulator.fleet import UnknownMeter
from iemdcr_twin.simulator.limits import answer_and_close
from iemdcr_twin.simulator.model import Refusal
from iemdcr_twin.simulator.store import DamagedMemory

log = logging.getLogger("iemdcr.control")
MAX_CONTROL_BODY = 64 * 1024
"""Bytes a control request body may have (the app's ``client_max_size``; more is 413 ``body_too_large``)."""


class ControlError(Exception):
    """A refused control request: ``status``, the error ``code``, a ``message`` naming the problem, and
    ``extra`` keys for the JSON body (e.g. ``known``: the names that would have been accepted)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """The control plane's error body: ``{"error": code, "message": message, **extra}``."""
    return web.json_response({"error": code, "message": message, **extra}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON 4xx (503 ``storage_error`` on a failed write or a damaged record file,
    named); an unexpected bug is a logged 500 without a traceback."""
    try:
        return await handler(request)
    except ControlError as exc:
        response = error_response(exc.status, exc.code, exc.message, **exc.extra)
        if exc.code == "request_timeout":  # a body that stopped arriving: answered now, the connection closed
            return await answer_and_close(request, response)
        return response
    except UnknownMeter as exc:
        return error_response(404, "unknown_meter", f"no meter with serial {exc.args[0]!r}")
    except ClockError as exc:
        return error_response(400, exc.code, str(exc))
    except Refusal as exc:  # the model refused, nothing changed; StorageError: 503 storage_error (control-api.md §2)
        return error_response(exc.status, exc.code, exc.message)
    except DamagedMemory as exc:  # a record damaged while the twin runs, read now (docs/persistence.md)
        log.error("%s %s: %s", request.method, request.path, exc, extra={"path": str(exc.path)})
        return error_response(503, "storage_error", str(exc))
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(404, "not_found", f"no control route at {request.path[:100]}")
        if exc.status == 405:  # Allow: the methods the path answers (RFC 9110 §15.5.6)
            response = error_response(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.path[:100]}"
            )
            response.headers["Allow"] = exc.headers.get("Allow", "")
            return response
        if exc.status == 413:
            return error_response(413, "body_too_large", f"the body is larger than {MAX_CONTROL_BODY} bytes")
        return error_response(exc.status, "http_error", exc.reason)
    except Exception:
        log.exception("control request %s %s failed", request.method, request.path)
        return error_response(500, "internal_error", "the twin failed to handle this request; see its log")
