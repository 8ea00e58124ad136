"""Time for tests: the one virtual clock (the twin's ``SimClock``, auto-jumping) and a hand-moved time source.

- ``FakeTime``: a time source (a callable returning seconds) that moves only when a test moves it. The meter
  model reads it as ``now()``; ``SimClock`` takes it as its monotonic or wall source; log filters take it as
  their clock.
- ``autojumping(clock)``: runs ``SimClock.autojump`` for the block, so sleeps on the clock never wait wall time:
  when nothing happened for ``IDLE_PASSES`` passes of the event loop and nothing holds the clock, it jumps to the
  next wake-up (like trio's MockClock). Idleness is judged in loop passes, not in wall time, so a jump costs
  none and a loaded machine (which stretches wall time, never the passes) cannot make a jump come early. The
  driver's requests hold it (``hold_meter_requests``), so time never jumps between a request and its answer;
  real I/O of a test (reopening a listener) holds it with ``clock.busy()``.
- ``record_sleeps(clock)``: the durations of every ``sleep`` on the clock, in order (retry delays, idle waits).

Why one clock serves every test: the driver tests need time to stand still while a request is on the wire and
to jump when the loop is idle; ``SimClock.busy()`` and ``autojump`` do both, and the twin already runs on a
``SimClock``, so the driver, the twin and a fake meter share it. The scenario runner's ``ScenarioClock`` (a
``SimClock`` too) adds what only a scenario needs: several twins in one loop, and a hold that lapses so a meter
sleeping on the clock for a request in flight still gets its time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from iemdcr_twin.driver.client import HttpResponse, MeterHttpClient
from iemdcr_twin.simulator.clock import SimClock

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z: every virtual clock of the suite starts here
IDLE_PASSES = 20  # passes of the event loop with nothing happening before the clock jumps


class FakeTime:
    """Seconds that move only when a test moves them (``advance`` or ``t``); call it to read them."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def frozen_clock(epoch: float = T0) -> SimClock:
    """A virtual clock at rate 0: time moves only by ``advance`` (or by auto-jump while one runs)."""
    return SimClock("virtual", 0.0, epoch)


@contextlib.asynccontextmanager
async def autojumping(clock: SimClock, idle_passes: int = IDLE_PASSES) -> AsyncIterator[SimClock]:
    """Run ``clock.autojump(0, idle_passes=...)`` for the block; the jumper task is cancelled and awaited on the
    way out."""
    jumper = asyncio.create_task(clock.autojump(0.0, idle_passes=idle_passes), name="autojump")
    try:
        yield clock
    finally:
        jumper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await jumper


def hold_meter_requests(monkeypatch: pytest.MonkeyPatch, clock: SimClock) -> None:
    """Every ``MeterHttpClient`` request of the test holds ``clock`` (``busy()``) while it is on the wire.

    Patched on the class, so it reaches the clients the driver and its CLI build themselves.
    """
    original = MeterHttpClient.request

    async def held(self: MeterHttpClient, method: str, path: str, body: dict[str, Any] | None = None) -> HttpResponse:
        with clock.busy():
            return await original(self, method, path, body)

    monkeypatch.setattr(MeterHttpClient, "request", held)


def record_sleeps(clock: SimClock) -> list[float]:
    """From now on, append the duration of every ``clock.sleep`` (whoever sleeps) to the returned list."""
    sleeps: list[float] = []
    original: Callable[..., Awaitable[None]] = clock.sleep

    async def sleep(seconds: float, *, for_busy: bool = False) -> None:
        sleeps.append(seconds)
        await original(seconds, for_busy=for_busy)

    clock.sleep = sleep  # type: ignore[method-assign]
    return sleeps
