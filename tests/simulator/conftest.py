"""Fixtures shared by the simulator tests."""

from __future__ import annotations

import pytest

from simulator.clock import SimClock
from tests.simulator.helpers import T0


@pytest.fixture
def clock() -> SimClock:
    """A frozen virtual clock at T0: time moves only when a test advances it."""
    return SimClock("virtual", 0, T0)
