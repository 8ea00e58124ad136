"""Requests aiohttp's own HTTP parser refuses: a plain-text 400 from aiohttp, and at most one log line each.

Raw bytes go to real listeners (a meter port and the control port); the log is what the ``aiohttp.server``
logger lets through ``MalformedRequestFilter``. The filter's clock is a fake one, so the rate limit is tested
without depending on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.log_limits import (
    SERVER_LOGGER,
    MalformedRequestFilter,
    RateLimit,
    limit_malformed_request_logs,
)
from tests.support.clock import FakeTime
from tests.support.http import MALFORMED, UNREAD_BAD_GZIP, send_raw

Client = TestClient[Any, Any]
LOOPBACK = "127.0.0.1"


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime(0.0)


@pytest.fixture
def log_filter(time_: FakeTime, caplog: pytest.LogCaptureFixture) -> Iterator[MalformedRequestFilter]:
    """The filter ``iemdcr-sim serve`` installs, on a fake clock; removed again afterwards. The logger's level is
    set here: other tests (the scenario CLI) may have left the root logger at CRITICAL."""
    caplog.set_level(logging.INFO, logger=SERVER_LOGGER)
    installed = limit_malformed_request_logs(MalformedRequestFilter(burst=10, window_s=60, now=time_))
    yield installed
    logging.getLogger(SERVER_LOGGER).removeFilter(installed)


def server_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SERVER_LOGGER]


async def settle() -> None:
    """aiohttp logs after it has answered; let its handler task finish (a few loop turns, no wall time)."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
async def test_each_refused_request_is_a_plain_400_and_one_log_line(
    control: Client, twin: Twin, log_filter: MalformedRequestFilter, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    for port in (twin.slot("1ISA0200000001").port, control.port):
        caplog.clear()
        answer = await send_raw(LOOPBACK, port, MALFORMED[kind])
        await settle()
        head = answer.split(b"\r\n\r\n")[0].lower()
        # aiohttp's own answer, before any handler: the one exception to JSON errors (docs/fidelity.md)
        assert head.startswith(b"http/1.0 400") and b"content-type: text/plain" in head, answer[:200]
        assert b"Traceback" not in answer
        lines = server_lines(caplog)
        assert len(lines) == 1, [r.getMessage() for r in lines]
        (line,) = lines
        assert line.levelno == logging.WARNING and line.exc_info is None and line.exc_text is None
        text = line.getMessage()
        assert text.startswith("refused a malformed HTTP request from 127.0.0.1: ") and "\n" not in text
        assert len(text) < 250


async def test_a_body_that_does_not_decode_while_draining_is_one_line(
    twin: Twin, log_filter: MalformedRequestFilter, caplog: pytest.LogCaptureFixture, control: Client
) -> None:
    """GET metervalue never reads its body; aiohttp drains it after the answer, and fails to decode it."""
    answer = await send_raw(LOOPBACK, twin.slot("1ISA0200000001").port, UNREAD_BAD_GZIP)
    await settle()
    assert answer.startswith(b"HTTP/1.1 200")
    (line,) = server_lines(caplog)
    assert line.exc_info is None and line.getMessage() == (
        "refused a malformed HTTP request: Can not decode content-encoding: gzip"
    )


async def test_a_flood_is_rate_limited_and_the_next_line_counts_what_was_left_out(
    control: Client, twin: Twin, log_filter: MalformedRequestFilter, caplog: pytest.LogCaptureFixture, time_: FakeTime
) -> None:
    ports = (twin.slot("1ISA0200000001").port, control.port)
    kinds = sorted(MALFORMED)
    for n in range(50):
        assert (await send_raw(LOOPBACK, ports[n % 2], MALFORMED[kinds[n % len(kinds)]])).startswith(b"HTTP/1.0 400")
    await settle()
    assert len(server_lines(caplog)) == 10  # the burst; 40 left out
    caplog.clear()
    time_.t += 59.9
    await send_raw(LOOPBACK, ports[0], MALFORMED[kinds[0]])
    await settle()
    assert server_lines(caplog) == []  # still the same window
    time_.t += 0.1
    await send_raw(LOOPBACK, ports[1], MALFORMED[kinds[1]])
    await settle()
    (line,) = server_lines(caplog)
    assert line.getMessage().endswith("(41 more since, not logged)")


async def test_a_reason_that_ends_in_a_colon_gives_the_parser_s_detail(
    control: Client, twin: Twin, log_filter: MalformedRequestFilter, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp's "Invalid char in url query:" puts the request line on the next line (then a caret): the log
    line gives it rather than end at the colon."""
    answer = await send_raw(LOOPBACK, twin.slot("1ISA0200000001").port, b"GET /?a=\x01b HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert answer.startswith(b"HTTP/1.0 400")
    (line,) = server_lines(caplog)
    text = line.getMessage()
    assert not text.rstrip().endswith(":"), text
    assert text.startswith("refused a malformed HTTP request from 127.0.0.1: Invalid char in url query: b'GET /?a="), (
        text
    )


def test_other_server_records_pass_unchanged(log_filter: MalformedRequestFilter) -> None:
    """A real bug in a handler keeps its traceback: only the parser's refusals are shortened."""
    try:
        raise KeyError("bug")
    except KeyError as exc:
        record = logging.LogRecord(
            SERVER_LOGGER, logging.ERROR, "", 0, "Error handling request", (), (KeyError, exc, None)
        )
    assert log_filter.filter(record) is True
    assert record.exc_info is not None and record.levelno == logging.ERROR and record.msg == "Error handling request"


def test_rate_limit_windows() -> None:
    time_ = FakeTime(0.0)
    limit = RateLimit(2, 10.0, time_)
    assert [limit.allow() for _ in range(4)] == [(True, 0), (True, 0), (False, 0), (False, 0)]
    time_.t = 10.0
    assert limit.allow() == (True, 2)
    assert limit.allow() == (True, 0)
    assert limit.allow() == (False, 0)
