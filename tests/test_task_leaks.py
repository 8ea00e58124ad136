"""The suite's task-leak check (tests/support/leaks.py): it fails on a task left pending, naming it, and lets a
cancelled task end."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.leaks import fail_on_leaked_tasks


async def test_a_task_left_pending_fails_the_test_and_is_named_and_cancelled() -> None:
    before = asyncio.all_tasks()
    forgotten = asyncio.create_task(asyncio.Event().wait(), name="forgotten")
    with pytest.raises(pytest.fail.Exception, match=r"1 asyncio task\(s\) still pending.*forgotten Event.wait"):
        await fail_on_leaked_tasks(before, grace_s=0.05)
    assert forgotten.cancelled()


async def test_a_cancelled_or_finishing_task_gets_a_moment_to_end() -> None:
    before = asyncio.all_tasks()
    cancelled = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    cancelled.cancel()  # not awaited: it ends on a later pass of the loop
    finishing = asyncio.create_task(asyncio.sleep(0))
    await fail_on_leaked_tasks(before, grace_s=0.05)
    assert cancelled.cancelled() and finishing.done()


async def test_tasks_that_were_there_before_do_not_count() -> None:
    older = asyncio.create_task(asyncio.Event().wait())
    before = asyncio.all_tasks()
    await fail_on_leaked_tasks(before, grace_s=0.05)
    older.cancel()
