"""A virtual clock for tests: sleeps never wait wall-clock time; time jumps to the next wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Iterator


class VirtualClock:
    """Like trio's MockClock with autojump: when the event loop is idle, jump to the next wake-up.

    "Idle" means: no HTTP request in flight (the tests mark requests with `busy()`) and a few passes of
    the event loop went by without anything else to do. Satisfies driver.clock.Clock.
    """

    def __init__(self, start: float = 1_750_000_000.0, idle_spins: int = 20) -> None:
        self._now = start
        self.idle_spins = idle_spins
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._busy = 0
        self._task: asyncio.Task[None] | None = None
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Hold time still while real I/O is in flight."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._heap, (self._now + seconds, self._seq, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._autojump())
        await future

    async def _autojump(self) -> None:
        while True:
            for _ in range(self.idle_spins):
                await asyncio.sleep(0)
            while self._heap and self._heap[0][2].done():
                heapq.heappop(self._heap)
            if self._busy or not self._heap:
                await asyncio.sleep(0.0002)
                continue
            self._now = max(self._now, self._heap[0][0])
            while self._heap and self._heap[0][0] <= self._now:
                _, _, future = heapq.heappop(self._heap)
                if not future.done():
                    future.set_result(None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
