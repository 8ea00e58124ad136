"""A full state directory over HTTP: 503 JSON ``storage_error`` on both APIs, nothing changed, and recovery on
its own once space is back (meter-api.md §1, control-api.md §2, docs/persistence.md).

The disk is made full by failing ``store.write_atomic`` with ENOSPC, the way the kernel does; the real thing (a
small tmpfs) is tests/e2e/test_persistence.py.
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator import store
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from iemdcr_twin.simulator.store import FailureLog
from tests.support.http import json_error, json_ok
from tests.support.meter import GW, USER
from tests.support.twin import S1, meter_url

Client = TestClient[Any, Any]
METER = f"/api/meters/{S1}"


class Disk:
    """Turns every atomic write into ENOSPC while ``full``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.refused = 0
        real = store.write_atomic

        def write_atomic(path: Path, data: bytes, *, replace: bool = True) -> None:
            if self.full:
                self.refused += 1
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real(path, data, replace=replace)

        monkeypatch.setattr(store, "write_atomic", write_atomic)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


@pytest.fixture
def twin(clock: SimClock, tmp_path: Path) -> Twin:
    twin = Twin(clock, state_dir=tmp_path, seed="tests")
    twin.add_meter(MeterSpec(port=0))
    return twin


async def post(session: aiohttp.ClientSession, twin: Twin, node: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
    headers = {"Content-Type": "application/json"}
    return await session.post(meter_url(twin, node), data=json.dumps(body), headers=headers)


async def xt(session: aiohttp.ClientSession, twin: Twin) -> bool:
    async with session.get(meter_url(twin, "metervalue")) as resp:
        return bool((await json_ok(resp))["XT"])


async def test_receipts_answer_503_storage_error_and_change_nothing(
    twin: Twin, control: Client, device: aiohttp.ClientSession, disk: Disk, clock: SimClock
) -> None:
    await json_ok(await post(device, twin, "gw", GW))
    await json_ok(await post(device, twin, "user", USER))
    await json_ok(await control.put(f"{METER}/load", json={"current_A": 0.5, "voltage_V": 400.0}))
    disk.full = True
    clock.advance(60)  # the checkpoint after the jump fails: B has registers to save
    async with await post(device, twin, "receipt", {"TX": "B"}) as resp:
        assert resp.content_type == "application/json"
        await json_error(resp, 503, "storage_error", "could not be written", "nothing changed")
    assert await xt(device, twin) is False
    disk.full = False
    await json_ok(await post(device, twin, "receipt", {"TX": "B"}))
    await json_ok(await control.put(f"{METER}/load", json={"current_A": 50.0, "voltage_V": 400.0}))
    clock.advance(600)
    await json_ok(await control.put(f"{METER}/load", json={"current_A": 0.0}))

    disk.full = True
    await json_error(await post(device, twin, "receipt", {"TX": "E"}), 503, "storage_error")
    assert await xt(device, twin) is True
    journal = await json_ok(await control.get(f"{METER}/journal"))
    assert [e["error"] for e in journal["entries"] if e["status"] == 503] == ["storage_error", "storage_error"]
    disk.full = False
    assert await json_ok(await post(device, twin, "receipt", {"TX": "E"})) == {"TX": "E", "XT": False}
    records = await json_ok(await control.get(f"{METER}/records"))
    assert [r["PG"] for r in records["records"]] == ["T1"]


async def test_power_off_answers_503_and_keeps_the_port_open_and_the_meter_powered(
    twin: Twin, control: Client, device: aiohttp.ClientSession, disk: Disk
) -> None:
    await json_ok(await post(device, twin, "gw", GW))
    await json_ok(await post(device, twin, "receipt", {"TX": "B"}))
    disk.full = True
    await json_error(await control.post(f"{METER}/power", json={"on": False}), 503, "storage_error")
    await json_error(await control.post(f"{METER}/power-cycle", json={"off_ms": 5000}), 503, "storage_error")
    state = await json_ok(await control.get(METER))
    assert state["powered"] is True and state["transaction"] is not None
    assert twin.slot(S1).listening
    assert await xt(device, twin) is True  # the port still answers
    assert (await json_ok(await control.get("/healthz")))["ok"] is True
    disk.full = False
    await json_ok(await control.post(f"{METER}/power", json={"on": False}))
    assert not twin.slot(S1).listening
    state = await json_ok(await control.get(METER))
    assert state["powered"] is False and state["transaction"] is None


async def test_factory_reset_and_a_fault_that_signs_answer_503_and_change_nothing(
    twin: Twin, control: Client, device: aiohttp.ClientSession, disk: Disk
) -> None:
    await json_ok(await post(device, twin, "gw", GW))
    await json_ok(await post(device, twin, "receipt", {"TX": "B"}))
    before = await json_ok(await control.get(METER))
    disk.full = True
    await json_error(await control.post(f"{METER}/factory-reset"), 503, "storage_error")
    await json_error(await control.put(f"{METER}/faults/sensor_unit_fault"), 503, "storage_error")
    after = await json_ok(await control.get(METER))
    assert (after["fingerprint"], after["faults"], after["transaction"]) == (
        before["fingerprint"],
        [],
        before["transaction"],
    )
    disk.full = False
    await json_ok(await control.put(f"{METER}/faults/sensor_unit_fault"))
    reset = await json_ok(await control.post(f"{METER}/factory-reset"))
    assert reset["previous_fingerprint"] == before["fingerprint"] != reset["fingerprint"]


async def test_failed_checkpoints_are_logged_once_and_retried_until_space_is_back(
    twin: Twin, control: Client, disk: Disk, clock: SimClock, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="iemdcr.store")
    meter = twin.slot(S1).meter
    await json_ok(await control.put(f"{METER}/load", json={"current_A": 10.0, "voltage_V": 400.0}))
    disk.full = True
    for _ in range(20):  # every jump checkpoints; the advance itself succeeds
        await json_ok(await control.post("/api/clock/advance", json={"seconds": 60}))
    assert disk.refused == 20
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
    saved = json.loads((tmp_path / S1 / "state.json").read_text())
    assert saved["import_uj"] < meter.registers.import_uj
    disk.full = False
    twin.checkpoint()  # the periodic checkpoint
    saved = json.loads((tmp_path / S1 / "state.json").read_text())
    assert saved["import_uj"] == meter.registers.import_uj
    assert any("succeed again" in r.getMessage() and "19 more failed" in r.getMessage() for r in caplog.records)


def test_the_failure_log_speaks_again_after_its_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iemdcr.store")
    now = [0.0]
    failures = FailureLog(monotonic=lambda: now[0])
    error = OSError(errno.ENOSPC, "No space left on device")
    for _ in range(5):
        failures.failed(Path("state.json"), error)
    now[0] += store.FAILURE_LOG_INTERVAL_S
    failures.failed(Path("state.json"), error)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "(1 failed writes" in lines[0] and "(5 failed writes" in lines[1]


def test_failures_held_at_start_up_are_logged_only_when_start_up_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """``serve`` builds its meters with the log held: a start-up that fails is its own one line (no "retried"
    promise, the process exits); one that goes on (a repair saved later) logs the held failure once."""
    caplog.set_level(logging.INFO, logger="iemdcr.store")
    failures = FailureLog(monotonic=lambda: 0.0)
    error = OSError(errno.EROFS, "Read-only file system")
    with pytest.raises(RuntimeError), failures.held():
        failures.failed(Path("lock"), error)
        raise RuntimeError("start-up failed")
    assert caplog.records == []
    with failures.held():
        failures.failed(Path("a/state.json"), error)
        failures.succeeded()  # another meter's write: no "succeed again" line while held
        failures.failed(Path("b/state.json"), error)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("cannot write b/state.json: Read-only file system (") and "retried" in line
    assert failures.failing
