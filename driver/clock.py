"""The clock the driver waits on, injectable so tests and scenarios can run it in virtual time."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything with `now()` (epoch seconds, UTC) and an awaitable `sleep(seconds)`.

    Every wait of the driver goes through `sleep` and every reading of the time through `now`, so a
    virtual clock (control-api.md §4) can run a 2 h resync interval in milliseconds.
    """

    def now(self) -> float:
        """The current time in epoch seconds, UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of this clock's time (at once for 0 or less)."""
        ...


class RealClock:
    """Wall-clock time and asyncio sleeps: the default for a real meter."""

    def now(self) -> float:
        """`time.time()`: epoch seconds, UTC."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`, negative durations as 0."""
        await asyncio.sleep(max(0.0, seconds))
