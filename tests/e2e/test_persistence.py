"""End to end: what the real ``iemdcr-sim serve`` keeps across a SIGKILL, a full disk and damaged state
(docs/persistence.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import SimFactory
from tests.e2e.test_serve import GW, USER, Charger


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def test_sigkill_right_after_a_clock_jump_keeps_what_the_jump_added(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    """A jump of hours inside a transaction, then SIGKILL before any periodic checkpoint: the checkpoint after
    the jump saved it, so the restarted meter shows the same registers (nothing signed or jumped is lost)."""
    sim = sim_factory("--clock", "virtual", "--state-dir", str(state_dir))
    charger = Charger(session, sim)
    await charger.freeze_clock()
    await charger.post("gw", GW)
    await charger.post("user", USER)
    await charger.post("receipt", {"TX": "B"})
    await charger.load(current_A=100, voltage_V=400)
    await charger.advance(2 * 3600)  # 80 kWh in one step
    await charger.load(current_A=0)
    live = (await charger.get("metervalue"))["RD"][0]["RV"]
    assert live == "00000080.000"
    sim.process.kill()
    sim.process.wait(timeout=20)
    saved = json.loads((state_dir / sim.meter.serial / "state.json").read_text())
    assert saved["import_uj"] == 80_000 * 3_600_000 * 1000

    again = Charger(session, sim_factory("--clock", "virtual", "--state-dir", str(state_dir)))
    assert (await again.get("metervalue"))["RD"][0]["RV"] == live
