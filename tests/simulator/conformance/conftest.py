"""The conformance lab fixture: a twin behind its control app on a hand-moved clock (``tests.support.lab``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from tests.support.charger import Charger
from tests.support.clock import T0, FakeTime
from tests.support.lab import SERIAL, WALL0, Lab


@pytest.fixture
async def lab(aiohttp_client: Any) -> AsyncIterator[Lab]:
    mono = FakeTime(0.0)
    clock = SimClock("virtual", 1.0, T0, monotonic=mono, wall=lambda: WALL0 + mono.t)
    twin = Twin(clock, seed="conformance", journal_size=1000)
    twin.add_meter(MeterSpec(port=0))
    control = await aiohttp_client(create_control_app(twin))
    async with aiohttp.ClientSession() as session:
        yield Lab(twin, control, mono, Charger(session, twin.slot(SERIAL).url, str(control.make_url("")).rstrip("/")))
