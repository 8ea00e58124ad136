"""Fixtures shared by the simulator tests: a frozen clock, a one-meter twin on it, its control app, a device client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import Twin
from tests.support.clock import frozen_clock
from tests.support.http import curl_like_session
from tests.support.twin import new_twin


@pytest.fixture
def clock() -> SimClock:
    """A frozen virtual clock at T0: time moves only when a test advances it."""
    return frozen_clock()


@pytest.fixture
def twin(clock: SimClock) -> Twin:
    """One seeded meter on the module's ``clock`` (``new_twin``); a module that needs more meters overrides it."""
    return new_twin(1, clock)


@pytest.fixture
async def control(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]], twin: Twin
) -> TestClient[Any, Any]:
    """The control app of the module's ``twin`` fixture; starting it starts the twin's meter listeners."""
    return await aiohttp_client(create_control_app(twin))


@pytest.fixture
async def device(control: TestClient[Any, Any]) -> AsyncIterator[aiohttp.ClientSession]:
    """A libcurl-like client for the meter ports (a new connection per request); the control app started them."""
    async with curl_like_session() as session:
        yield session
