"""Fixtures for the tests that start real processes: ``iemdcr-sim serve`` (``tests.support.processes``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.http import curl_like_session
from tests.support.processes import Sim, SimFactory, start_sim


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[SimFactory]:
    """``start(*args)`` starts a serve process; every process still running is killed at the end."""
    started: list[Sim] = []

    def start(*args: str, preexec_fn: Callable[[], None] | None = None) -> Sim:
        sim = start_sim(tmp_path / "logs", *args, preexec_fn=preexec_fn)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        if sim.process.poll() is None:
            sim.process.kill()
            sim.process.wait(timeout=10)
        if sim.process.stdout is not None:
            sim.process.stdout.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Like libcurl in EVerest: a new TCP connection per request."""
    async with curl_like_session() as session:
        yield session
