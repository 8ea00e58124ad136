"""No test leaves an asyncio task behind: the check behind the ``no_leaked_tasks`` fixture (tests/conftest.py).

A task still pending after a test and its fixtures is a bug: a background loop nobody stops, a handler nobody
awaits. Cancelled or finishing tasks get ``GRACE_PASSES`` passes of the event loop, then up to ``GRACE_S`` of wall
time (for one that ends on an I/O event), to end; whatever is left fails the test, named, and is cancelled so it
cannot disturb the next test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Set
from pathlib import Path
from typing import Any

import pytest

GRACE_PASSES = 100
GRACE_S = 2.0  # a guard, never a measure of speed


async def fail_on_leaked_tasks(before: Set[asyncio.Task[Any]], grace_s: float = GRACE_S) -> None:
    """``pytest.fail`` naming every task not in ``before`` (nor the caller's) that is still pending after the grace."""
    me = asyncio.current_task()

    def leaked() -> set[asyncio.Task[Any]]:
        return {task for task in asyncio.all_tasks() - before if task is not me and not task.done()}

    for _ in range(GRACE_PASSES):
        if not leaked():
            return
        await asyncio.sleep(0)
    deadline = time.monotonic() + grace_s
    while leaked() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    left = leaked()
    if not left:
        return
    names = sorted(describe(task) for task in left)
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    pytest.fail(f"{len(left)} asyncio task(s) still pending after the test: " + "; ".join(names), pytrace=False)


def describe(task: asyncio.Task[Any]) -> str:
    """A task's name, its coroutine and where it waits: ``Task-4 Twin._checkpoint_loop at simulator/fleet.py:230``."""
    coro = task.get_coro()
    text = f"{task.get_name()} {getattr(coro, '__qualname__', repr(coro))}"
    stack = task.get_stack(limit=1)
    if stack:
        path = Path(stack[-1].f_code.co_filename)
        text += f" at {path.parent.name}/{path.name}:{stack[-1].f_lineno}"
    return text
