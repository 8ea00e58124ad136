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
from datetime import UTC, datetime
from typing import Literal

Mode = Literal["real", "virtual"]
HELD_POLL_S = 0.0002  # autojump with idle_passes: real seconds between looks while held or nobody sleeps


class ClockError(ValueError):
    """A clock request that cannot be honoured (advance in real mode, negative rate...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# The years a meter can show and take as TM (model/timefmt.py: UTC years 2 to 9998), so every meter time is
# shown at any UTC offset: the simulation time never leaves this range by an epoch, an advance or a jump.
EARLIEST_S = datetime(2, 1, 1, tzinfo=UTC).timestamp()
LATEST_S = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
LATEST_TEXT = "9998-12-31T23:59:59Z"
RANGE_TEXT = f"0002-01-01T00:00:00Z to {LATEST_TEXT}"


def check_epoch(epoch: float, written: str | None = None) -> float:
    """``epoch`` (seconds since 1970, UTC) when the meters can show it; ``ClockError`` ``bad_epoch`` naming the
    range otherwise (``iemdcr-sim serve --epoch``, a scenario's ``epoch``, ``SimClock``). The message names the
    epoch as ``written`` (quoted) when given, else in whole seconds."""
    if not EARLIEST_S <= epoch <= LATEST_S:  # also NaN
        shown = repr(written) if written is not None else f"{epoch:.0f} seconds since 1970"
        raise ClockError(
            "bad_epoch",
            f"{shown} is outside the times a meter can show ({RANGE_TEXT}, {EARLIEST_S:.0f} to {LATEST_S:.0f} "
            "seconds since 1970)",
        )
    return epoch


class SimClock:
    """Monotonic simulation time in epoch seconds, shared by a twin (and, in scenarios, its driver).

    Time stays within what a meter can show (``EARLIEST_S`` to ``LATEST_S``): an ``epoch`` outside is
    ``ClockError`` ``bad_epoch``, an ``advance`` past the end ``time_out_of_range``, and auto-jump never jumps
    past it (a sleeper due later is not woken). A running clock (real, or virtual at a rate) stops at the end:
    ``now()`` never exceeds ``LATEST_S``, the instant the meters show as their last millisecond
    (model/timefmt.py). Sleeps are counted in the running time behind it, so a wait begun at the end still
    lasts its length of (scaled) wall time rather than hang or return at once.
    """

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
        self._anchor_sim = wall() if epoch is None else check_epoch(epoch)
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
        """The simulated instant, epoch seconds; stops at ``LATEST_S`` (9998-12-31T23:59:59Z)."""
        return min(self._running(), LATEST_S)

    def _running(self) -> float:
        """The time the clock has run to, not stopped at ``LATEST_S``: the measure of sleeps and rate changes."""
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
        self._anchor_sim = self._running()
        self._anchor_mono = self._monotonic()
        self._mode, self._rate = new_mode, new_rate
        self._wake_due()

    def advance(self, seconds: float) -> None:
        """Jump forward; sleepers whose deadline passed wake up. ``ClockError``: ``clock_not_virtual``,
        ``bad_seconds`` (not above 0), ``time_out_of_range`` (past ``LATEST_S``; ``check_reach``)."""
        if self._mode != "virtual":
            raise ClockError("clock_not_virtual", "advance needs a virtual clock (PUT /api/clock mode virtual)")
        if not seconds > 0:
            raise ClockError("bad_seconds", "seconds must be a number above 0")
        self.check_reach(seconds)
        self._jump(seconds)
        self._wake_due()

    def check_reach(self, seconds: float) -> None:
        """``ClockError`` ``time_out_of_range`` when ``seconds`` from now is past the last time a meter can show
        (an advance, a scenario's wait); the message names ``seconds`` and how many are left."""
        now = self.now()
        if not now + seconds <= LATEST_S:
            left = max(0.0, LATEST_S - now)
            raise ClockError(
                "time_out_of_range",
                f"seconds {seconds:.15g} would take the clock past {LATEST_TEXT}, the last time a meter can "
                f"show; at most {left:.0f} seconds are left",
            )

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
        heapq.heappush(self._sleepers, (self._running() + seconds, next(self._order), future))
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

    def next_jump(self) -> float | None:
        """The next deadline auto-jump may jump to: None when nobody sleeps or it is past ``LATEST_S``."""
        deadline = self.next_deadline()
        return deadline if deadline is not None and deadline <= LATEST_S else None

    def note_activity(self) -> None:
        """Adapters call this on every request so auto-jump never jumps while work is in flight."""
        self.activity += 1

    def _wake_due(self) -> None:
        now = self._running()
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
        self._timer = loop.call_later(max(0.0, (deadline - self._running()) / self._rate), self._wake_due)

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
            deadline = self.next_jump()
            if self.activity == seen and self._busy <= 0 and deadline is not None:
                gap = deadline - self._running()
                if gap > 0:
                    self._jump(gap)
                self._wake_due()
            elif idle_passes and (self._busy > 0 or deadline is None):
                await asyncio.sleep(HELD_POLL_S)
