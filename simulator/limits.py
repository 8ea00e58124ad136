"""Open files for ``iemdcr-sim serve``: raise the soft limit, refuse a fleet that cannot fit, quiet accept errors;
bound the time a request body may take on every port (``read_body``) and close a connection that ran out of it.

Every meter holds two descriptors for its whole life (its port reservation and its listener, see
``fleet.MeterSlot``) and needs room for at least one connection and one record write; the process itself
(standard streams, the event loop, the control port, its connections and event streams) needs a fixed base.
``serve`` raises the soft ``RLIMIT_NOFILE`` to the hard limit and refuses to start a fleet that does not fit,
instead of failing later with ``[Errno 24] Too many open files``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

try:
    import resource
except ImportError:  # pragma: no cover - not on POSIX: no limit to raise or read
    resource = None  # type: ignore[assignment]

log = logging.getLogger("iemdcr.limits")

BASE_DESCRIPTORS = 64
"""Descriptors ``serve`` needs besides its meters: stdio, the event loop, the control port and its clients."""
DESCRIPTORS_PER_METER = 4
"""Per meter: its port reservation and its listener (held), plus room for a connection and a record write."""
IDLE_TIMEOUT_S = 20.0
"""Wall seconds a connection may sit idle or half-open, and a request body may take to arrive (every port).

Idle: no request since connecting or since the last answer; half-open: a request's headers or body still
incomplete. Real chargers open a new connection per request (EVerest's driver does) or poll at 1 Hz, so
nothing legitimate waits this long; 20 s stays above the 15 s after which aiohttp clients drop idle
connections themselves, so a client never reuses one the twin has just closed. ``serve --idle-timeout``.
"""
BODY_TIMEOUT_KEY = web.AppKey("body_timeout_s", float)
"""An app's wall seconds for a request body to arrive (``read_body``): the meter app's and the control app's
factories set it from ``--idle-timeout``; IDLE_TIMEOUT_S when unset."""
SHUTDOWN_TIMEOUT_S = 5.0
"""At exit, how long a request still in progress may finish before it is cancelled (aiohttp's default: 60 s).

Meter requests change the model in one synchronous step, so a cancelled one changes nothing. The short time
also bounds aiohttp's wait on a connection accepted while shutting down (a retry of an accept that failed for
want of descriptors can land then), which would otherwise hold the exit for the full 60 s.
"""
LINGERING_TIME_S = 10.0
"""aiohttp's default: how long an unread request body is drained before the connection closes (capped below)."""
ACCEPT_ERROR_INTERVAL_S = 10.0
"""At most one log line per this many seconds about connections that could not be accepted."""
_ACCEPT_ERROR = "socket.accept() out of system resource"  # asyncio's message (selector_events.py)


class UnreadableBody(Exception):
    """A request body that could not be read; ``status``, ``code`` and the message are the answer both APIs give
    (``{"error": code, "message": ...}``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class BodyTimeout(UnreadableBody):
    """A request body still incomplete after the app's body timeout: 408 ``request_timeout``."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            408, "request_timeout", f"the body did not arrive within {timeout_s:g} s; the connection is closed"
        )
        self.timeout_s = timeout_s


async def read_body(request: web.Request) -> bytes:
    """The request's whole body, read within the app's ``BODY_TIMEOUT_KEY`` seconds (the one body read of both
    ports). A body read once is cached by aiohttp, so a second call returns at once. 413
    ``HTTPRequestEntityTooLarge`` passes through.

    Raises UnreadableBody: 400 ``bad_json`` when it does not decode (a ``Content-Encoding`` it does not match),
    400 ``incomplete_body`` when the client left mid-body, and BodyTimeout (408 ``request_timeout``) when it is
    still incomplete after the timeout. Answer a BodyTimeout with ``answer_and_close``: a client that stalled
    mid-body must not hold the connection (and its descriptor) for ever.
    """
    timeout_s = request.app.get(BODY_TIMEOUT_KEY, IDLE_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout(timeout_s) from None
    except web.RequestPayloadError:
        raise UnreadableBody(400, "bad_json", "the body could not be decoded") from None
    # aiohttp raises RuntimeError "Connection closed." when the client left before the read began
    except (ConnectionResetError, RuntimeError):
        raise UnreadableBody(400, "incomplete_body", "the connection closed before the body arrived") from None


async def answer_and_close(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send ``response`` now (with ``Connection: close``) and close the connection behind it.

    For the 408 after a BodyTimeout. Left to itself, aiohttp would first drain the rest of the body for its
    ``lingering_time`` (up to another idle timeout on either port, 10 s at most) and close only
    then, so a client reading to the end of the connection saw its answer complete after twice the timeout.
    The answer is written in full before the close (``transport.close`` flushes it); aiohttp then finds the
    response sent and the connection closing, and neither writes again nor drains.
    """
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:  # the client left meanwhile: nobody to answer
        pass
    request.protocol.force_close()
    return response


def app_runner(app: web.Application, idle_timeout_s: float) -> web.AppRunner:
    """The runner of a meter port's or the control port's app: an idle connection closes after ``idle_timeout_s``,
    and so does one whose refused body is still being drained (``lingering_time``: aiohttp's 10 s would keep it
    open longer than the timeout says); at exit a request in progress has ``SHUTDOWN_TIMEOUT_S``."""
    return web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=idle_timeout_s,
        lingering_time=min(idle_timeout_s, LINGERING_TIME_S),
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )


class DescriptorBudgetError(Exception):
    """The fleet needs more open files than the process may have; the message gives the numbers."""


def open_file_limit() -> tuple[int, int]:
    """The process's (soft, hard) ``RLIMIT_NOFILE``; ``resource.RLIM_INFINITY`` (-1) means no limit."""
    if resource is None:  # pragma: no cover
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return (soft, hard) as they are afterwards.

    A hard limit of "unlimited" leaves the soft limit as it is (some kernels refuse an unlimited soft limit
    for open files). A refusal by the kernel is logged and the soft limit kept.
    """
    soft, hard = open_file_limit()
    if resource is None or hard == resource.RLIM_INFINITY or soft == hard:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
        return soft, hard
    log.info("open-file limit raised from %d to %d", soft, hard)
    return hard, hard


def descriptors_needed(meters: int) -> int:
    """Open files ``serve`` needs for ``meters`` meters: the base plus a fixed number per meter."""
    return BASE_DESCRIPTORS + DESCRIPTORS_PER_METER * meters


def check_fleet_fits(meters: int, limits: tuple[int, int] | None = None) -> None:
    """Raise DescriptorBudgetError, giving the numbers, when ``meters`` meters need more than the soft limit."""
    soft, hard = open_file_limit() if limits is None else limits
    if soft < 0:  # RLIM_INFINITY
        return
    needed = descriptors_needed(meters)
    if needed <= soft:
        return
    fits = max(0, (soft - BASE_DESCRIPTORS) // DESCRIPTORS_PER_METER)
    hard_text = "unlimited" if hard < 0 else str(hard)
    raise DescriptorBudgetError(
        f"{meters} meters need {needed} open files ({DESCRIPTORS_PER_METER} per meter plus {BASE_DESCRIPTORS}), "
        f"but the open-file limit is {soft} (hard limit {hard_text}), enough for {fits} meters. "
        "Raise the limit (ulimit -n, docker run --ulimit nofile=N:N, systemd LimitNOFILE=) or serve fewer meters."
    )


def is_accept_trouble(context: dict[str, Any]) -> bool:
    """Whether an event-loop report is about accepting connections (see AcceptErrorLimiter).

    Two kinds: asyncio's "out of system resource" for a failed ``accept()``, and the retry it schedules a
    second later failing on a listener closed meanwhile (power off, shutdown): an exception in the callback
    ``BaseSelectorEventLoop._start_serving``, one per failed accept, with a traceback each.
    """
    message = str(context.get("message", ""))
    if message == _ACCEPT_ERROR:
        return True
    return (
        message.startswith("Exception in callback ")
        and "._start_serving(" in message
        and isinstance(context.get("exception"), OSError | ValueError)
    )


class AcceptErrorLimiter:
    """An event-loop exception handler that lets one "cannot accept" line through per interval.

    asyncio reports every failed ``accept()`` (out of descriptors or memory) with a traceback, many times a
    second per listening port, which filled 11 MB of log in 15 s, and reports once more each retry that
    finds the listener closed. This handler logs one line per ``interval_s`` with the number of reports it
    held back, and passes every other report on unchanged.
    Install it with ``loop.set_exception_handler(AcceptErrorLimiter())``.
    """

    def __init__(self, interval_s: float = ACCEPT_ERROR_INTERVAL_S, now: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._now = now
        self._last: float | None = None
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not is_accept_trouble(context):
            loop.default_exception_handler(context)
            return
        now = self._now()
        if self._last is not None and now - self._last < self.interval_s:
            self.suppressed += 1
            return
        held_back, self.suppressed = self.suppressed, 0
        self._last = now
        more = f"; {held_back} more held back since the previous line" if held_back else ""
        log.error(
            "cannot accept connections: %s (open connections hold every descriptor; idle ones are closed "
            "after --idle-timeout)%s",
            context.get("exception") or "out of resources",
            more,
            extra={"held_back": held_back},
        )
