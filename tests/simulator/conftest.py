"""Fixtures shared by the simulator tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import Twin
from tests.support.clock import T0


@pytest.fixture
def clock() -> SimClock:
    """A frozen virtual clock at T0: time moves only when a test advances it."""
    return SimClock("virtual", 0, T0)


@pytest.fixture
async def control(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]], twin: Twin
) -> TestClient[Any, Any]:
    """The control app of the module's ``twin`` fixture; starting it starts the twin's meter listeners."""
    return await aiohttp_client(create_control_app(twin))
