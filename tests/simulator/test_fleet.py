"""The Twin: building meters, listeners, power, background power-on, checkpoints and the state dir."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from iemdcr_twin.simulator import fleet
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.fleet import MeterSpec, Twin, UnknownMeter
from iemdcr_twin.simulator.store import FolderInUse, WrongProfile
from tests.support.clock import T0
from tests.support.http import V1, curl_like_session, until
from tests.support.meter import GW, USER


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with curl_like_session() as session:
        yield session


async def get_status(session: aiohttp.ClientSession, url: str) -> int | None:
    """The status of a GET, or None when the connection is refused."""
    try:
        async with session.get(url) as resp:
            return resp.status
    except aiohttp.ClientConnectorError:
        return None


# ---- building ---------------------------------------------------------------------------------------------


def test_serials_follow_the_profile_default(clock: SimClock) -> None:
    twin = Twin(clock, seed="s")
    serials = [twin.add_meter(MeterSpec(port=0), i).meter.serial for i in range(3)]
    assert serials == ["1ISA0200000001", "1ISA0200000002", "1ISA0200000003"]
    big = twin.add_meter(MeterSpec(port=0, profile="iem-dcr-1500"), 0)
    assert big.meter.serial == "1ISA0215000001" and big.meter.profile.rated_current_A == 1500
    named = twin.add_meter(MeterSpec(port=0, serial="1ISA0000000042"))
    assert twin.slot("1ISA0000000042") is named
    assert list(twin.slots) == [*serials, "1ISA0215000001", "1ISA0000000042"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (MeterSpec(port=0, serial="1ISA0200000001"), "used twice"),
        (MeterSpec(port=0, serial="ISA123"), "1ISA followed by 10 digits"),
        (MeterSpec(port=0, profile="iem-dcr-9"), "unknown profile"),
        (MeterSpec(port=0, serial="1ISA0200000009", switches={"nope": 1}), "unknown switch"),
        (MeterSpec(port=0, serial="1ISA0200000009", switches={"v1_transaction": "no"}), "v1_transaction"),
    ],
)
def test_bad_specs_are_refused(clock: SimClock, spec: MeterSpec, match: str) -> None:
    twin = Twin(clock, seed="s")
    twin.add_meter(MeterSpec(port=0))
    with pytest.raises(ValueError, match=match):
        twin.add_meter(spec)
    assert len(twin.slots) == 1


def test_switches_from_the_spec(clock: SimClock) -> None:
    twin = Twin(clock)
    slot = twin.add_meter(MeterSpec(port=0, switches={"v1_transaction": False, "activation_threshold_A": 2}))
    assert slot.meter.switches.v1_transaction is False
    assert slot.meter.switches.activation_threshold_A == 2.0


def test_unknown_serial(clock: SimClock) -> None:
    with pytest.raises(UnknownMeter):
        Twin(clock).slot("1ISA0200000001")


def test_seeded_keys_are_reproducible_and_distinct_per_serial(clock: SimClock) -> None:
    def keys(seed: str | None) -> list[str]:
        twin = Twin(clock, seed=seed)
        return [twin.add_meter(MeterSpec(port=0), i).meter.signer.public_key_hex for i in range(2)]

    assert keys("lab") == keys("lab")
    assert len(set(keys("lab"))) == 2
    assert keys("lab") != keys("other")
    assert keys(None) != keys(None)


# ---- listeners and power -------------------------------------------------------------------------------------


async def test_start_opens_one_port_per_meter_and_stop_closes_them(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    twin = Twin(clock, seed="s")
    slots = [twin.add_meter(MeterSpec(port=0), i) for i in range(3)]
    await twin.start()
    try:
        ports = [slot.port for slot in slots]
        assert 0 not in ports and len(set(ports)) == 3
        assert all(slot.listening for slot in slots)
        for slot in slots:
            async with session.get(slot.url + V1 + "metervalue") as resp:
                assert (await resp.json())["MS"] == slot.meter.serial
    finally:
        await twin.stop()
    assert not any(slot.listening for slot in slots)
    assert await get_status(session, slots[0].url + V1 + "metervalue") is None


async def test_set_power_closes_and_reopens_the_same_port(clock: SimClock, session: aiohttp.ClientSession) -> None:
    twin = Twin(clock, seed="s")
    slot = twin.add_meter(MeterSpec(port=0))
    await twin.start()
    try:
        url = slot.url + V1 + "gw"
        port = slot.port
        await twin.set_power(slot.meter.serial, False)
        assert not slot.meter.powered and not slot.listening
        assert await get_status(session, url) is None
        await twin.set_power(slot.meter.serial, False)  # idempotent
        await twin.set_power(slot.meter.serial, True)
        await twin.set_power(slot.meter.serial, True)
        assert slot.port == port and slot.meter.powered
        assert await get_status(session, url) == 200
    finally:
        await twin.stop()


async def test_power_cycle_in_virtual_time(clock: SimClock, session: aiohttp.ClientSession) -> None:
    twin = Twin(clock, seed="s")
    slot = twin.add_meter(MeterSpec(port=0))
    await twin.start()
    try:
        slot.meter.post_gw(dict(GW))
        await twin.power_cycle(slot.meter.serial, 30.0)
        assert not slot.meter.powered and slot.power_task is not None
        clock.advance(29.9)
        await asyncio.sleep(0.01)
        assert not slot.listening
        clock.advance(0.1)
        await until(lambda: slot.listening)
        assert slot.meter.powered and not slot.meter.gw_written and slot.power_task is None
        assert await get_status(session, slot.url + V1 + "gw") == 200
        await twin.power_cycle(slot.meter.serial)
        assert slot.meter.powered and slot.listening and slot.meter.counters["power_cycles"] == 2
    finally:
        await twin.stop()


async def test_stop_cancels_a_pending_power_on(clock: SimClock) -> None:
    twin = Twin(clock, seed="s")
    slot = twin.add_meter(MeterSpec(port=0))
    await twin.start()
    await twin.power_cycle(slot.meter.serial, 60.0)
    task = slot.power_task
    await twin.stop()
    await asyncio.sleep(0)
    assert task is not None and task.cancelled()
    clock.advance(120)
    await asyncio.sleep(0.01)
    assert not slot.listening


# ---- non-volatile memory ------------------------------------------------------------------------------------


def left_by_a_kill(state_dir: Path, copy: Path, clock: SimClock) -> Twin:
    """A twin on what a SIGKILL now would leave: a copy of ``state_dir`` (the running twin keeps its folders)."""
    shutil.copytree(state_dir, copy)
    return Twin(SimClock("virtual", 0, clock.now()), state_dir=copy)


async def test_state_dir_keeps_key_registers_and_records_across_twins(tmp_path: Path) -> None:
    wall = [0.0]
    clock = SimClock("virtual", 1.0, T0, monotonic=lambda: wall[0])  # time runs with ``wall``, without jumps
    twin = Twin(clock, state_dir=tmp_path)
    meter = twin.add_meter(MeterSpec(port=0)).meter
    await twin.start()
    meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    clock.advance(360)
    meter.set_load(0.0)
    meter.post_receipt({"TX": "E"})
    meter.set_load(100.0, 400.0)
    wall[0] += 90  # 1 kWh more as time runs (no jump, no periodic checkpoint yet): saved by the one at stop
    await twin.stop()  # releases the folders
    assert (tmp_path / meter.serial / "state.json").exists()

    again = Twin(clock, state_dir=tmp_path).add_meter(MeterSpec(port=0)).meter
    assert again.signer.public_key_hex == meter.signer.public_key_hex
    assert again.get_transaction() == meter.get_transaction()
    assert again.registers.next_pagination == 2
    assert view.snapshot(again)["registers"]["import_kWh"] == "00000005.000"


async def test_checkpoint_loop_persists_moving_registers(
    tmp_path: Path, clock: SimClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "CHECKPOINT_INTERVAL_S", 0.005)
    twin = Twin(clock, state_dir=tmp_path)
    meter = twin.add_meter(MeterSpec(port=0)).meter
    state = tmp_path / meter.serial / "state.json"
    await twin.start()
    try:
        meter.set_load(100.0, 400.0)
        clock.advance(90)  # 1 kWh
        expected = 3_600_000 * 1_000_000  # 3.6 MJ in µJ
        await until(lambda: json.loads(state.read_text())["import_uj"] == expected)
    finally:
        await twin.stop()


async def test_a_kill_right_after_a_clock_jump_loses_nothing(tmp_path: Path, clock: SimClock) -> None:
    """Issue 13's counterexample on the twin: B, 0.2 A, a 1 ms jump, SIGKILL (no stop). The checkpoint after
    the jump saved the registers, so the restarted meter shows what was live; so does a jump of hours."""
    state_dir = tmp_path / "state"
    twin = Twin(clock, state_dir=state_dir)
    meter = twin.add_meter(MeterSpec(port=0)).meter
    await twin.start()
    meter.post_gw(dict(GW))
    meter.post_user(dict(USER))
    meter.post_receipt({"TX": "B"})
    meter.set_load(0.2, 200.0)
    clock.advance(0.001)
    live = meter.registers.import_uj
    assert live > 0
    killed = left_by_a_kill(state_dir, tmp_path / "kill-1", clock).add_meter(MeterSpec(port=0)).meter
    assert killed.registers.import_uj == live

    meter.set_load(100.0, 400.0)
    clock.advance(3 * 3600)
    live = meter.registers.import_uj
    killed = left_by_a_kill(state_dir, tmp_path / "kill-2", clock).add_meter(MeterSpec(port=0)).meter
    assert (killed.registers.import_uj, killed.registers.import_mwh) == (live, 120_000_000)
    await twin.stop()
    assert clock.after_jump == []  # a stopped twin no longer checkpoints on this clock


async def test_a_twin_holds_its_meters_folders_until_it_stops(tmp_path: Path, clock: SimClock) -> None:
    twin = Twin(clock, state_dir=tmp_path)
    twin.add_meter(MeterSpec(port=0))
    await twin.start()
    with pytest.raises(FolderInUse, match=r"another iemdcr-sim .* holds this meter's folder"):
        Twin(clock, state_dir=tmp_path).add_meter(MeterSpec(port=0))
    await twin.stop()
    assert Twin(clock, state_dir=tmp_path).add_meter(MeterSpec(port=0)).meter.serial == "1ISA0200000001"


def test_a_meter_of_another_profile_is_refused_and_lets_its_folder_go(tmp_path: Path, clock: SimClock) -> None:
    first = Twin(clock, state_dir=tmp_path)
    serial = first.add_meter(MeterSpec(port=0)).meter.serial  # an iem-dcr-125
    first.close_memories()
    twin = Twin(clock, state_dir=tmp_path)
    with pytest.raises(WrongProfile, match="holds a meter of profile iem-dcr-125, not iem-dcr-1500 as asked"):
        twin.add_meter(MeterSpec(port=0, profile="iem-dcr-1500", serial=serial))
    assert twin.slots == {}
    assert twin.add_meter(MeterSpec(port=0, serial=serial)).meter.profile.name == "iem-dcr-125"  # folder free again


def test_state_dir_without_seed_still_keeps_one_key(tmp_path: Path, clock: SimClock) -> None:
    twin = Twin(clock, state_dir=tmp_path)
    first = twin.add_meter(MeterSpec(port=0)).meter.signer.public_key_hex
    twin.close_memories()
    second = Twin(clock, state_dir=tmp_path).add_meter(MeterSpec(port=0)).meter.signer.public_key_hex
    assert first == second


async def test_a_powered_off_meter_keeps_its_port(clock: SimClock, session: aiohttp.ClientSession) -> None:
    """While off, connections are refused but nobody else can take the port (a driver must never reach a
    foreign meter after a power cycle)."""
    twin = Twin(clock)
    slot = twin.add_meter(MeterSpec(port=0))
    await twin.start()
    try:
        port = slot.port
        await twin.set_power(slot.meter.serial, False)
        assert await get_status(session, slot.url + V1 + "gw") is None
        intruder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))
        intruder.close()
        await twin.set_power(slot.meter.serial, True)
        assert slot.port == port
        assert await get_status(session, slot.url + V1 + "gw") == 200
    finally:
        await twin.stop()
