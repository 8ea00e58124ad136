"""End to end: what the real ``iemdcr-sim serve`` keeps across a SIGKILL, a full disk and damaged state
(docs/persistence.md)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from iemdcr_twin.simulator.store import FileMemory
from tests.support.charger import Charger
from tests.support.clock import FakeTime
from tests.support.meter import GW, SERIAL, USER, charge, ready_meter, verified_payload
from tests.support.processes import STARTUP_TIMEOUT_S, SimFactory, console_script

pytestmark = pytest.mark.e2e  # starts the installed iemdcr-sim / iemdcr-driver


async def test_sigkill_right_after_a_clock_jump_keeps_what_the_jump_added(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    """A jump of hours inside a transaction, then SIGKILL before any periodic checkpoint: the checkpoint after
    the jump saved it, so the restarted meter shows the same registers (nothing signed or jumped is lost)."""
    sim = sim_factory("--clock", "virtual", "--state-dir", str(state_dir))
    charger = sim.charger(session)
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

    again = sim_factory("--clock", "virtual", "--state-dir", str(state_dir)).charger(session)
    assert (await again.get("metervalue"))["RD"][0]["RV"] == live


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for this test (needs root, or CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip(
            "mounting a 64 KiB tmpfs needs root (CAP_SYS_ADMIN); the ENOSPC path is covered by "
            "tests/simulator/test_storage_errors.py"
        )
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"mount -t tmpfs is not permitted here ({mounted.stderr.strip()}); the ENOSPC path is covered "
            "by tests/simulator/test_storage_errors.py"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(b"\0" * 1024)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return filler


async def status_and_body(charger: Charger, method: str, path: str, body: object = None) -> tuple[int, dict[str, Any]]:
    async with charger.session.request(method, charger.control + path, json=body) as resp:
        return resp.status, json.loads(await resp.read())


async def test_a_full_disk_answers_503_changes_nothing_and_recovers_by_itself(
    sim_factory: SimFactory, small_disk: Path, session: aiohttp.ClientSession
) -> None:
    sim = sim_factory("--clock", "virtual", "--state-dir", str(small_disk / "state"))
    charger = sim.charger(session)
    meter = f"/api/meters/{charger.serial}"
    await charger.freeze_clock()
    await charger.post("gw", GW)
    await charger.post("user", USER)
    await charger.load(current_A=0.5, voltage_V=400)
    filler = fill(small_disk)
    await charger.advance(60)  # its checkpoint fails (logged) and will be retried

    status, raw = await charger.meter("POST", "receipt", {"TX": "B"})
    assert (status, json.loads(raw)["error"]) == (503, "storage_error")
    assert (await charger.get("metervalue"))["XT"] is False
    status, body = await status_and_body(charger, "POST", f"{meter}/power", {"on": False})
    assert (status, body["error"]) == (503, "storage_error")
    state = await charger.meter_state()
    assert state["powered"] is True
    assert (await charger.get("metervalue"))["XT"] is False  # the port still answers

    filler.unlink()  # space is back: no restart, no call to make
    assert await charger.post("receipt", {"TX": "B"}) == {"TX": "B", "XT": True}
    await charger.load(current_A=100, voltage_V=400)
    await charger.advance(360)
    await charger.load(current_A=0)
    assert await charger.post("receipt", {"TX": "E"}) == {"TX": "E", "XT": False}
    verified_payload(await charger.text("receipt"), (await charger.get("publickey"))["PK"])
    status, body = await status_and_body(charger, "POST", f"{meter}/power", {"on": False})
    assert (status, body["powered"]) == (200, False)
    status, body = await status_and_body(charger, "POST", f"{meter}/power", {"on": True})
    assert (status, body["powered"]) == (200, True)
    stderr = sim.stderr()
    assert "Traceback" not in stderr
    assert stderr.count("No space left on device") == 1, stderr  # rate-limited
    assert "succeed again" in stderr


# ---- damaged state: refuse to start with the file named, or warn and go on ---------------------------------


@pytest.fixture(scope="module")
def two_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir whose meter (the serve default serial) signed two records."""
    root = tmp_path_factory.mktemp("two-records")
    time = FakeTime()
    meter = ready_meter(time, FileMemory(root, SERIAL))
    charge(meter, time)
    meter.post_user(dict(USER))
    charge(meter, time)
    meter.checkpoint()
    return root


@pytest.fixture
def damaged(two_records: Path, tmp_path: Path) -> Path:
    """A copy of ``two_records`` for the test to damage."""
    state = tmp_path / "state"
    shutil.copytree(two_records, state)
    return state


def serve_refuses(state_dir: Path) -> str:
    """Run ``iemdcr-sim serve`` on ``state_dir``; it must exit with status 2 and no traceback. Returns stderr."""
    command = [console_script("iemdcr-sim"), "serve", "--port", "0", "--control-port", "0", "--state-dir"]
    done = subprocess.run([*command, str(state_dir)], capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # no meter was announced
    return done.stderr


def record_files(state_dir: Path) -> list[Path]:
    return sorted((state_dir / SERIAL / "records").glob("*.json"))


def test_serve_refuses_a_folder_whose_state_was_deleted_beside_records(damaged: Path) -> None:
    state_file = damaged / SERIAL / "state.json"
    state_file.unlink()
    stderr = serve_refuses(damaged)
    assert f"iemdcr-sim: {state_file}: missing, but {damaged / SERIAL / 'records'} holds 2 signed records" in stderr
    assert f"move {damaged / SERIAL} away" in stderr
    assert not state_file.exists()  # no new meter was written over the old one


@pytest.mark.parametrize("content", [b'{"pagination": 2, "reason": "E", "ocmf": "OCMF|{', b"\x00\xff garbage"])
def test_serve_refuses_a_damaged_record_and_names_it(damaged: Path, content: bytes) -> None:
    newest = record_files(damaged)[-1]
    newest.write_bytes(content)
    stderr = serve_refuses(damaged)
    assert f"iemdcr-sim: {newest}: unreadable signed record (" in stderr
    assert "restore the file from a backup, or move it out of" in stderr


def test_serve_refuses_a_record_whose_pagination_disagrees_with_its_name_and_signed_pg(damaged: Path) -> None:
    first = record_files(damaged)[0]
    data = json.loads(first.read_text())
    assert first.name.endswith("-T0000000001.json") and '"PG":"T1"' in data["ocmf"]
    data["pagination"] = 7
    first.write_text(json.dumps(data))
    stderr = serve_refuses(damaged)
    said = "T1 in the file name, 7 in 'pagination', T1 in the signed OCMF"
    assert f"iemdcr-sim: {first}: damaged signed record: its PG disagrees ({said})" in stderr


def test_serve_refuses_a_state_of_another_serial_than_its_folder(damaged: Path) -> None:
    state_file = damaged / SERIAL / "state.json"
    data = json.loads(state_file.read_text())
    data["serial"] = "OTHER"
    state_file.write_text(json.dumps(data))
    stderr = serve_refuses(damaged)
    assert f"iemdcr-sim: {state_file}: holds meter 'OTHER', but its folder is '{SERIAL}'" in stderr


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (
            "import_uj",
            -1,
            "key 'import_uj' must be a whole number of µJ from 0 to 359999999999999999999 (the register's width), "
            "not -1",
        ),
        ("next_pagination", "3", "key 'next_pagination' must be a whole number from 0, not '3'"),
    ],
)
def test_serve_refuses_a_state_key_of_the_wrong_type_or_range_and_names_it(
    damaged: Path, key: str, value: object, problem: str
) -> None:
    state_file = damaged / SERIAL / "state.json"
    data = json.loads(state_file.read_text())
    data[key] = value
    state_file.write_text(json.dumps(data))
    stderr = serve_refuses(damaged)
    assert f"iemdcr-sim: {state_file}: unreadable meter state ({problem})" in stderr


async def test_serve_ignores_a_stray_file_in_records_with_a_warning(
    damaged: Path, sim_factory: SimFactory, session: aiohttp.ClientSession
) -> None:
    stray = damaged / SERIAL / "records" / "notes.json"
    stray.write_text("not a record")
    sim = sim_factory("--state-dir", str(damaged))
    async with session.get(f"{sim.control}/api/meters/{SERIAL}/records") as resp:
        assert resp.status == 200
        assert [r["PG"] for r in (await resp.json())["records"]] == ["T1", "T2"]
    assert f"{stray} is not a record file" in sim.stderr()
    assert "Traceback" not in sim.stderr()


# ---- one process per meter folder ------------------------------------------------------------------------------


def serve_exits_2(*args: str) -> str:
    """Run ``iemdcr-sim serve --port 0 --control-port 0 ARGS``: it must refuse with status 2, no traceback and no
    meter announced. Returns stderr."""
    command = [console_script("iemdcr-sim"), "serve", "--port", "0", "--control-port", "0", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    return done.stderr


async def test_a_second_twin_on_a_held_state_dir_refuses_and_a_sigkill_leaves_no_stale_lock(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    """Two twins on one folder would both sign PG T1 with one key and the second would overwrite the first's
    signed record: the second refuses to start, naming the folder. A SIGKILL of the first releases it (the
    kernel drops the lock), and the record it signed is still there, byte for byte."""
    first = sim_factory("--clock", "virtual", "--state-dir", str(state_dir), "--seed", "1")
    charger = first.charger(session)
    await charger.freeze_clock()
    await charger.post("gw", GW)
    await charger.post("user", USER)
    signed = await charger.charge(50, 360)
    (record_file,) = record_files(state_dir)
    before = record_file.read_bytes()

    stderr = serve_exits_2("--state-dir", str(state_dir))
    folder = state_dir / SERIAL
    assert f"iemdcr-sim: {folder}: another iemdcr-sim (pid {first.process.pid}) holds this meter's folder" in stderr
    assert "give this one another --state-dir" in stderr
    assert await charger.post("receipt", {"TX": "B"}) == {"TX": "B", "XT": True}  # the first one runs on

    first.process.kill()
    first.process.wait(timeout=20)
    again = sim_factory("--clock", "virtual", "--state-dir", str(state_dir)).charger(session)  # no stale lock
    assert (await again.text("transaction")) == signed  # the last record, as the first twin signed it
    assert record_files(state_dir) == [record_file] and record_file.read_bytes() == before


# ---- a record damaged while the twin runs -------------------------------------------------------------------


async def test_a_record_damaged_while_running_answers_503_naming_the_file_and_changes_nothing(
    damaged: Path, sim_factory: SimFactory, session: aiohttp.ClientSession
) -> None:
    sim = sim_factory("--state-dir", str(damaged))
    charger = sim.charger(session)
    key = (await charger.get("publickey"))["PK"]
    newest = record_files(damaged)[-1]
    good = newest.read_bytes()
    newest.write_bytes(b'{"pagination": 2, "reason": "E", "ocmf": "OCMF|{')  # after start-up checked it
    records = f"{sim.control}/api/meters/{SERIAL}/records"
    for url in (records, records + "?format=safe-xml"):
        async with session.get(url) as resp:
            assert resp.status == 503
            assert resp.content_type == "application/json"
            body = await resp.json()
        assert body["error"] == "storage_error"
        assert body["message"].startswith(f"{newest}: unreadable signed record (")
    async with session.post(f"{sim.control}/api/meters/{SERIAL}/factory-reset") as resp:
        assert resp.status == 503 and (await resp.json())["error"] == "storage_error"
    assert (await charger.get("publickey"))["PK"] == key  # the reset was refused before it began
    assert (await charger.meter_state())["pagination"]["next"] == 3

    newest.write_bytes(good)  # restored: the next request reads it
    async with session.get(records) as resp:
        assert resp.status == 200
        assert [r["PG"] for r in (await resp.json())["records"]] == ["T1", "T2"]
    stderr = sim.stderr()
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "unreadable signed record" in line]
    assert len(lines) == 3 and all(str(newest) in line for line in lines), stderr


# ---- a folder of another profile ------------------------------------------------------------------------------


def test_serve_refuses_a_fleet_entry_of_another_profile_on_a_meters_folder(damaged: Path, tmp_path: Path) -> None:
    """The folder holds an iem-dcr-125 (serve's default profile); a fleet entry asking for an iem-dcr-1500 under
    its serial would change MM under the same key and records."""
    state_file = damaged / SERIAL / "state.json"
    before = state_file.read_bytes()
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"- {{port: 0, serial: {SERIAL}, profile: iem-dcr-1500}}\n")
    stderr = serve_exits_2("--state-dir", str(damaged), "--fleet", str(fleet))
    assert f"iemdcr-sim: {state_file}: holds a meter of profile iem-dcr-125, not iem-dcr-1500 as asked" in stderr
    assert "Ask for profile iem-dcr-125 to serve this meter" in stderr
    assert state_file.read_bytes() == before
