"""The one auto-jumping virtual clock a scenario's twin and driver share (control-api.md §4).

``SimClock.autojump`` jumps once the loop has been idle for a short real threshold. Scenarios run several
twins in one event loop, so "idle" has to be judged per scenario and a little more carefully:

- a request of the driver that is on the wire (sent, not yet answered) holds the clock, so a busy loop never
  makes time jump between a request and its answer; the hold lapses after ``FLIGHT_HOLD_S`` of wall time so a
  meter that sleeps on this very clock (latency, ``delay`` faults) still gets its time;
- a runner step that awaits real I/O (power on opens a listener) holds the clock with ``hold()``;
- ``settle()`` waits for the next idle moment *without* jumping, so checks look at a quiet system.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from iemdcr_twin.driver.client import HttpResponse, MeterHttpClient
from iemdcr_twin.simulator.clock import SimClock

IDLE_THRESHOLD_S = 0.001
FLIGHT_HOLD_S = 0.2


class ScenarioClock(SimClock):
    """A virtual clock at rate 0 that only moves by (auto-)jumps, with holds and settle points."""

    def __init__(self, epoch: float) -> None:
        super().__init__("virtual", 0.0, epoch)
        self._holds = 0
        self._flights: dict[int, float] = {}
        self._flight_ids = itertools.count()
        self._settlers: list[asyncio.Future[None]] = []
        self.on_move: list[Callable[[], None]] = []

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` ahead and tell ``on_move`` callbacks (waiting steps look again)."""
        super().advance(seconds)
        for callback in list(self.on_move):
            callback()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """No jumps while the block runs."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            self.activity += 1

    def flight_started(self) -> int:
        """A driver request went on the wire: hold jumps (up to FLIGHT_HOLD_S of wall time); returns its id."""
        ident = next(self._flight_ids)
        self._flights[ident] = time.monotonic()
        self.activity += 1
        return ident

    def flight_ended(self, ident: int) -> None:
        """The request ``ident`` got its answer (or failed)."""
        self._flights.pop(ident, None)
        self.activity += 1

    async def settle(self) -> None:
        """Return at the next idle moment; time does not move for it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settlers.append(future)
        await future

    def _is_held(self) -> bool:
        # SimClock may keep its own busy() counter; a negative one means the meter sleeps on this clock for
        # a request in flight (SimClock.sleep(for_busy=True)), so that request must not hold time still.
        base = getattr(self, "_busy", 0)
        base = base if isinstance(base, int) else 0
        if self._holds or base > 0:
            return True
        if self._flights and base == 0:
            return time.monotonic() - min(self._flights.values()) < FLIGHT_HOLD_S
        return False

    async def run(self, threshold_s: float = IDLE_THRESHOLD_S) -> None:
        """The auto-jump loop; run it as a background task for the scenario's lifetime."""
        while True:
            seen = self.activity
            await asyncio.sleep(threshold_s)
            if self.activity != seen or self._is_held():
                continue
            if self._settlers:
                settlers, self._settlers = self._settlers, []
                for future in settlers:
                    if not future.done():
                        future.set_result(None)
                continue
            deadline = self.next_jump()
            if deadline is None:
                continue
            gap = deadline - self.now()
            if gap > 0:
                self.advance(gap)
            else:
                self._wake_due()


class ScenarioHttpClient(MeterHttpClient):
    """The driver's own HTTP client, telling the scenario clock when a request is on the wire."""

    def __init__(self, base_url: str, timeout_s: float, clock: ScenarioClock) -> None:
        super().__init__(base_url, timeout_s)
        self._clock = clock

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> HttpResponse:
        """The base client's request, marked as in flight on the clock while it runs."""
        ident = self._clock.flight_started()
        try:
            return await super().request(method, path, body)
        finally:
            self._clock.flight_ended(ident)


def wall() -> float:
    """Wall-clock seconds for durations only (``time.perf_counter``), never for simulated time."""
    return time.perf_counter()
