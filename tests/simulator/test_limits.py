"""The open-file rules of ``serve`` (issue 12.2): the budget per meter, the refusal, quiet accept errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from iemdcr_twin.simulator import limits


def test_the_budget_is_a_base_plus_a_fixed_number_per_meter() -> None:
    assert limits.descriptors_needed(0) == limits.BASE_DESCRIPTORS
    assert limits.descriptors_needed(1000) == limits.BASE_DESCRIPTORS + 1000 * limits.DESCRIPTORS_PER_METER


def test_a_fleet_that_fits_passes_and_one_that_does_not_is_refused_with_the_numbers() -> None:
    limits.check_fleet_fits(240, (1024, 1024))  # 64 + 4 × 240 = 1024
    limits.check_fleet_fits(1_000_000, (-1, -1))  # unlimited
    with pytest.raises(limits.DescriptorBudgetError) as refused:
        limits.check_fleet_fits(1000, (1024, 4096))
    message = str(refused.value)
    for figure in ("1000 meters", "4064 open files", "4 per meter", "limit is 1024", "hard limit 4096", "240 meters"):
        assert figure in message, message


class FakeLoop:
    def __init__(self) -> None:
        self.passed_on: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.passed_on.append(context)


def test_accept_errors_are_logged_once_per_interval_with_the_number_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    limiter = limits.AcceptErrorLimiter(interval_s=10, now=lambda: now[0])
    loop = FakeLoop()
    report = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
    with caplog.at_level(logging.ERROR, logger="iemdcr.limits"):
        for _ in range(500):  # asyncio reports each failed accept, many per second and port
            limiter(loop, report)  # type: ignore[arg-type]
            now[0] += 0.01
        now[0] = 111.0
        limiter(loop, report)  # type: ignore[arg-type]
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "cannot accept connections" in lines[0] and "Too many open files" in lines[0]
    assert "held back" not in lines[0]
    assert "499 more held back" in lines[1]
    assert all(record.exc_info is None for record in caplog.records)  # one line each, no traceback
    assert loop.passed_on == []


def test_accept_retries_on_a_closed_listener_count_as_accept_errors(caplog: pytest.LogCaptureFixture) -> None:
    limiter = limits.AcceptErrorLimiter(interval_s=10, now=lambda: 0.0)
    loop = FakeLoop()
    retry = {
        "message": "Exception in callback BaseSelectorEventLoop._start_serving(<...>, <socket>, None, 128)",
        "exception": ValueError("Invalid file descriptor: -1"),
    }
    with caplog.at_level(logging.ERROR, logger="iemdcr.limits"):
        for _ in range(1000):
            limiter(loop, retry)  # type: ignore[arg-type]
    assert len(caplog.records) == 1 and limiter.suppressed == 999
    assert loop.passed_on == []


def test_other_loop_reports_pass_through_unchanged() -> None:
    limiter = limits.AcceptErrorLimiter()
    loop = FakeLoop()
    others = [
        {"message": "Task exception was never retrieved", "exception": ValueError("x")},
        {"message": "Exception in callback Twin._checkpoint_loop()", "exception": OSError(28, "No space left")},
        {"message": "Exception in callback BaseSelectorEventLoop._start_serving(...)", "exception": KeyError("x")},
    ]
    for context in others:
        limiter(loop, context)  # type: ignore[arg-type]
    assert loop.passed_on == others


async def test_it_works_as_a_real_event_loops_exception_handler(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(limits.AcceptErrorLimiter())
    try:
        with caplog.at_level(logging.ERROR):
            for _ in range(50):
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": OSError(24, "EMFILE")}
                )
    finally:
        loop.set_exception_handler(previous)
    assert len([r for r in caplog.records if "cannot accept" in r.getMessage()]) == 1
    assert not [r for r in caplog.records if r.name == "asyncio"]
