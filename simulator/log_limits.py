"""Keep clients from filling the log: one short, rate-limited line for each request aiohttp's parser refuses.

aiohttp answers a request its own HTTP parser refuses (a bad chunk size, ``Transfer-Encoding`` beside
``Content-Length``, an over-long request line or header, a ``Content-Encoding`` it cannot decode...) with a
``400 text/plain`` before any handler of ours runs, and logs the parser's exception with its traceback (9 to 12
lines) on the ``aiohttp.server`` logger; so does a body it cannot decode while it drains a request that the
handler did not read. Any client can send such requests as fast as it likes. ``MalformedRequestFilter`` turns
each of those records into one line (a warning naming the peer and the parser's reason, never a traceback) and
lets at most ``burst`` of them through per ``window_s`` seconds; the next line let through says how many were
left out. Every other record of that logger (a real bug in a handler, say) passes unchanged.

Only public aiohttp names are used: the ``aiohttp.server`` logger, ``aiohttp.http.HttpProcessingError`` and
``aiohttp.web.RequestPayloadError``. The ``text/plain`` answer itself stays aiohttp's (docs/fidelity.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.http import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"
DEFAULT_BURST = 10
DEFAULT_WINDOW_S = 60.0
REASON_CHARS = 120
_REFUSED = (HttpProcessingError, web.RequestPayloadError)


class RateLimit:
    """At most ``burst`` events per window of ``window_s`` seconds (by ``now``, monotonic wall time)."""

    def __init__(self, burst: int, window_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.window_s, self.now = burst, window_s, now
        self._window_start = now()
        self._used = 0
        self.suppressed = 0  # refused since the last event let through

    def allow(self) -> tuple[bool, int]:
        """``(True, n)`` when this event may pass, ``n`` being how many were refused since the last that passed;
        ``(False, 0)`` when it may not."""
        t = self.now()
        if t - self._window_start >= self.window_s:
            self._window_start, self._used = t, 0
        if self._used >= self.burst:
            self.suppressed += 1
            return False, 0
        self._used += 1
        left_out, self.suppressed = self.suppressed, 0
        return True, left_out


def _reason(error: BaseException) -> str:
    """The parser's reason as one short line of printable ASCII (it may quote the client's bytes)."""
    cause = error.__cause__ if isinstance(error, web.RequestPayloadError) and error.__cause__ else error
    text = getattr(cause, "message", None) or str(cause) or type(cause).__name__
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else type(cause).__name__
    if first.endswith(":"):  # "Invalid char in url query:" then the request line, then a caret under the char
        detail = [line for line in lines[1:] if line.strip("^ ")]
        first = f"{first} {detail[0]}" if detail else first.rstrip(":")
    printable = "".join(c if " " <= c <= "~" else "?" for c in first)
    return printable[:REASON_CHARS] + ("..." if len(printable) > REASON_CHARS else "")


class MalformedRequestFilter(logging.Filter):
    """For the ``aiohttp.server`` logger: parser refusals become one rate-limited line (see the module)."""

    def __init__(
        self, burst: int = DEFAULT_BURST, window_s: float = DEFAULT_WINDOW_S, now: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.limit = RateLimit(burst, window_s, now)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, _REFUSED):
            return True
        allowed, left_out = self.limit.allow()
        if not allowed:
            return False
        args = record.args if isinstance(record.args, tuple) else ()
        peer = f" from {str(args[0])[:60]}" if args and "%s" in str(record.msg) else ""
        record.msg = "refused a malformed HTTP request%s: %s%s"
        record.args = (peer, _reason(error), f" ({left_out} more since, not logged)" if left_out else "")
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def limit_malformed_request_logs(filter_: MalformedRequestFilter | None = None) -> MalformedRequestFilter:
    """Install ``filter_`` (or a default one) on the ``aiohttp.server`` logger, replacing an earlier one."""
    logger = logging.getLogger(SERVER_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, MalformedRequestFilter)]:
        logger.removeFilter(old)
    installed = filter_ or MalformedRequestFilter()
    logger.addFilter(installed)
    return installed
