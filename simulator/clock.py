"""The simulation clock: wall time, or virtual time that runs at a rate, jumps, or auto-jumps when idle.

Everything time-dependent in the twin (meter time, energy integration, ramps, signature delays, latency)
reads ``now()`` and waits with ``sleep()``. The scenario runner hands the same clock to the driver, and with
``autojump`` the clock jumps to the next pending wake-up once the event loop has been idle for a short real
threshold (like trio's MockClock), so hours of charging take milliseconds and run deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Literal

Mode = Literal["real", "virtual"]
HELD_POLL_S = 0.0002  # autojump with idle_passes: real seconds between looks while held or nobody sleeps


class ClockError(ValueError):
    """A clock request that cannot be honoured (advance in real mode, negative rate...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SimClock:
    """Monotonic simulation time in epoch seconds, shared by a twin (and, in scenarios, its driver)."""

    def __init__(
        self,
        mode: Mode = "real",
        rate: float = 1.0,
        epoch: float | None = None,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self.wall = wall  # real time, epoch seconds: the journal's wall_time (injectable for tests)
        self._anchor_sim = wall() if epoch is None else epoch
        self._anchor_mono = monotonic()
        self._mode: Mode = "real"
        self._rate = 0.0  # held still until ``set`` below, so a virtual clock starts exactly at ``epoch``
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self.activity = 0
        self._busy = 0
        self.jumps = 0
        # called before every jump: whoever judges what happened between jumps catches up first
        self.before_jump: list[Callable[[], None]] = []
        # called after every jump, before sleepers wake: whoever must not lose what the jump added (the twin's
        # register checkpoint, meter-api.md §3.1) saves it here
        self.after_jump: list[Callable[[], None]] = []
        self.set(mode, rate if mode == "virtual" else None)

    # ---- reading and setting -------------------------------------------------------------------------

    def now(self) -> float:
        return self._anchor_sim + (self._monotonic() - self._anchor_mono) * self._rate

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def rate(self) -> float:
        return self._rate

    def set(self, mode: Mode | None = None, rate: float | None = None) -> None:
        """Switch mode and/or rate; time continues from the current simulated instant, never backwards."""
        new_mode = mode or self._mode
        if new_mode not in ("real", "virtual"):
            raise ClockError("bad_mode", f"clock mode must be real or virtual, got {new_mode!r}")
        if new_mode == "real" and rate is not None and rate != 1:
            raise ClockError("clock_not_virtual", "a real clock runs at rate 1; switch to virtual first")
        new_rate = 1.0 if new_mode == "real" else (self._rate if rate is None else float(rate))
        if not new_rate >= 0 or new_rate > 1_000_000:
            raise ClockError("bad_rate", "rate must be a number from 0 to 1000000")
        self._anchor_sim = self.now()
        self._anchor_mono = self._monotonic()
        self._mode, self._rate = new_mode, new_rate
        self._wake_due()

    def advance(self, seconds: float) -> None:
        """Jump forward; sleepers whose deadline passed wake up."""
        if self._mode != "virtual":
            raise ClockError("clock_not_virtual", "advance needs a virtual clock (PUT /api/clock mode virtual)")
        if not seconds > 0:
            raise ClockError("bad_seconds", "seconds must be a number above 0")
        self._jump(seconds)
        self._wake_due()

    def _jump(self, seconds: float) -> None:
        for callback in self.before_jump:
            callback()
        self._anchor_sim += seconds
        self.jumps += 1
        for callback in self.after_jump:
            callback()

    def as_dict(self) -> dict[str, object]:
        return {"mode": self._mode, "rate": self._rate, "now": self.now(), "pending_sleepers": len(self._sleepers)}

    # ---- waiting -------------------------------------------------------------------------------------

    async def sleep(self, seconds: float, *, for_busy: bool = False) -> None:
        """Wait ``seconds`` of simulation time.

        ``for_busy``: the sleeper works on behalf of a ``busy()`` holder (a meter answering with simulated
        latency while the driver's request is in flight), so while it sleeps that hold does not stop auto-jump.
        """
        self.activity += 1
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now() + seconds, next(self._order), future))
        self._reschedule()
        if for_busy:
            self._busy -= 1
        try:
            await future
        finally:
            if for_busy:
                self._busy += 1
            self.activity += 1

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Hold auto-jump while real I/O is in flight (a client request, reopening a listener)."""
        self._busy += 1
        self.activity += 1
        try:
            yield
        finally:
            self._busy -= 1
            self.activity += 1

    def next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def note_activity(self) -> None:
        """Adapters call this on every request so auto-jump never jumps while work is in flight."""
        self.activity += 1

    def _wake_due(self) -> None:
        now = self.now()
        while self._sleepers and (self._sleepers[0][0] <= now or self._sleepers[0][2].done()):
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        self._reschedule()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.next_deadline()
        if deadline is None or self._rate == 0:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(max(0.0, (deadline - self.now()) / self._rate), self._wake_due)

    # ---- auto-jump -------------------------------------------------------------------------------------

    async def autojump(self, threshold_s: float = 0.005, *, idle_passes: int = 0) -> None:
        """Run forever: when nothing happened for ``threshold_s`` of real time, jump to the next wake-up.

        ``idle_passes``: nothing may happen for that many further passes of the event loop either. With
        ``threshold_s`` 0, idleness is judged in loop passes alone, so a jump costs no wall time (the tests' clock);
        while the clock stays held (``busy``) or nobody sleeps on it, it also waits ``HELD_POLL_S`` between looks
        rather than spin.
        """
        if self._mode != "virtual":
            self.set("virtual", 0)
        while True:
            seen = self.activity
            await asyncio.sleep(threshold_s)
            for _ in range(idle_passes):
                await asyncio.sleep(0)
            deadline = self.next_deadline()
            if self.activity == seen and self._busy <= 0 and deadline is not None:
                gap = deadline - self.now()
                if gap > 0:
                    self._jump(gap)
                self._wake_due()
            elif idle_passes and (self._busy > 0 or deadline is None):
                await asyncio.sleep(HELD_POLL_S)
