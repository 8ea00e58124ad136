"""The whole suite: Hypothesis profiles, and a check that no async test leaves an asyncio task behind.

Hypothesis profiles are loaded before any test module builds its settings.

``ci`` (the default) is deterministic: ``derandomize`` derives every example from the test itself, so a landing
never depends on a coin toss, and no example database carries state from one run to the next. A failure prints
its reproduction blob. ``long`` is the separate, randomized search for new counterexamples:

    HYPOTHESIS_PROFILE=long python -m pytest tests/simulator/model/test_state_machine.py

Tests that set their own ``max_examples`` keep it and inherit everything else from the loaded profile.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.support.leaks import fail_on_leaked_tasks

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2000,
    stateful_step_count=100,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ---- a test that starts a process says so ---------------------------------------------------------------------

PROCESS_MARKERS = frozenset({"e2e", "bench", "browser"})


@pytest.fixture(autouse=True)
def processes_need_a_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a process (``iemdcr-sim``, ``iemdcr-driver``, Python, Chromium...) must be marked ``e2e``
    (or ``bench``, ``browser``), so that ``pytest -m "not e2e and not browser and not bench"`` stays the fast inner
    loop; an unmarked one fails at its first ``subprocess.Popen`` (what ``subprocess.run`` and asyncio use)."""
    if PROCESS_MARKERS & {mark.name for mark in request.node.iter_markers()}:
        return

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process ({args!r}): mark it e2e (pyproject.toml markers)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


# ---- no test leaves a task behind ---------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every async test gets ``no_leaked_tasks`` first, so its check runs after every other fixture's teardown."""
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.fixturenames.insert(0, "no_leaked_tasks")


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if a task it (or one of its fixtures) started is still pending once they are all done
    (``tests.support.leaks``)."""
    before = asyncio.all_tasks()
    yield
    await fail_on_leaked_tasks(before)
