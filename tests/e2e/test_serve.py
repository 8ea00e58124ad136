"""End to end: the real ``iemdcr-sim serve`` process, a charger's sequence over HTTP, restarts and signals."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.http import MALFORMED, UNREAD_BAD_GZIP
from tests.support.meter import GW, TARIFF, USER, verified_payload
from tests.support.processes import SimFactory, console_script, parse_line

pytestmark = pytest.mark.e2e  # starts the installed iemdcr-sim / iemdcr-driver


async def test_charger_sequence_power_cycle_sigkill_and_restart(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    sim = sim_factory("--clock", "virtual", "--state-dir", str(state_dir))
    assert sim.clock == "virtual" and len(sim.meters) == 1
    charger = sim.charger(session)
    await charger.freeze_clock()  # time moves only by /api/clock/advance, so energy is exact

    # a charger's init
    gw = await charger.get("gw")
    assert (gw["CT"], gw["CI"], gw["TM"][-2:]) == ("", "", " U")
    assert await charger.post("gw", GW) == {**GW, "TM": GW["TM"] + " I"}
    assert (await charger.post("gw", GW, expect=428))["error"] == "gw_already_set"
    assert await charger.post("tariff", TARIFF) == TARIFF
    key = await charger.get("publickey")
    assert key["SA"] == "ECDSA-secp256r1-SHA256"
    public_key = key["PK"]
    assert hashlib.sha256(bytes.fromhex(public_key)).hexdigest()[:16] == sim.meter.fingerprint
    value = await charger.get("metervalue")
    assert (value["MS"], value["XT"], value["ST"]) == (sim.meter.serial, False, "G")
    assert await charger.post("user", USER) == USER

    # first transaction: 100 A at 400 V for 6 minutes = 4 kWh
    assert await charger.post("receipt", {"TX": "B"}) == {"TX": "B", "XT": True}
    await charger.load(current_A=100, voltage_V=400)
    await charger.advance(360)
    value = await charger.get("metervalue")
    assert value["XT"] is True
    assert value["RD"][2]["WV"] == "00000004.000"
    assert (value["I"], value["U2"], value["P"]) == (100, 400, 40000)
    await charger.load(current_A=0)
    assert await charger.post("receipt", {"TX": "E"}) == {"TX": "E", "XT": False}
    first = await charger.text("receipt")
    payload = verified_payload(first, public_key)
    assert payload["PG"] == "T1"
    assert (payload["CT"], payload["CI"], payload["ID"], payload["TT"]) == (
        "EVSEID",
        GW["CI"],
        "04A1B2C3",
        "0.49 EUR/kWh",
    )
    assert [r["TX"] for r in payload["RD"]] == ["B", "E"]
    assert [r["RV"] for r in payload["RD"]] == ["00000000.000", "00000004.000"]

    # second transaction: PG + 1; v1 and v2 transaction are the last receipt byte for byte
    second = await charger.charge(50, 180)
    payload = verified_payload(second, public_key)
    assert payload["PG"] == "T2"
    assert [r["RV"] for r in payload["RD"]] == ["00000004.000", "00000005.000"]
    assert await charger.text("transaction") == second
    assert await charger.text("transaction", version="v2") == second
    assert not second.endswith(b"\n")

    # power cycle: volatile state is gone, non-volatile stays
    await charger.lab("POST", f"/api/meters/{charger.serial}/power-cycle")
    gw = await charger.get("gw")
    assert (gw["CT"], gw["TM"][-2:]) == ("", " U")
    assert (await charger.get("metervalue"))["RD"][2]["WV"] == "00000000.000"
    status, raw = await charger.meter("GET", "receipt")
    assert (status, json.loads(raw)["error"]) == (404, "no_record")
    assert await charger.text("transaction") == second
    assert (await charger.post("gw", GW))["CT"] == "EVSEID"
    registers = (await charger.meter_state())["registers"]
    assert registers["import_kWh"] == "00000005.000"

    # SIGKILL, then restart on the same state dir: the same meter
    assert sim.signal(signal.SIGKILL) == -signal.SIGKILL
    again = sim_factory("--clock", "virtual", "--state-dir", str(state_dir))
    assert (again.meter.serial, again.meter.fingerprint) == (sim.meter.serial, sim.meter.fingerprint)
    charger = again.charger(session)
    await charger.freeze_clock()
    assert (await charger.get("publickey"))["PK"] == public_key
    assert await charger.text("transaction") == second
    assert await charger.text("transaction", version="v2") == second
    state = await charger.meter_state()
    assert state["pagination"] == {"next": 3}
    assert state["registers"]["import_mWh"] >= registers["import_mWh"]
    assert state["clock"]["status"] == "U" and state["gw"]["written"] is False

    # and it goes on counting: PG 3, begin not below the last signed end
    await charger.post("gw", GW)
    await charger.post("user", USER)
    third = await charger.charge(100, 90)
    payload = verified_payload(third, public_key)
    assert payload["PG"] == "T3"
    assert payload["RD"][0]["RV"] >= "00000005.000"
    assert payload["RD"][1]["RV"] == "00000006.000"


async def test_sigterm_shuts_down_cleanly_and_keeps_the_registers(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    sim = sim_factory("--clock", "virtual", "--state-dir", str(state_dir))
    charger = sim.charger(session)
    await charger.freeze_clock()
    await charger.load(current_A=100, voltage_V=400)
    await charger.advance(90)  # 1 kWh, no transaction: saved after the jump and again at shutdown
    assert sim.signal(signal.SIGTERM) == 0
    assert "shutting down" in sim.stderr()
    assert "Traceback" not in sim.stderr()
    saved = json.loads((state_dir / sim.meter.serial / "state.json").read_text())
    assert saved["import_uj"] >= 3_600_000 * 1_000_000

    again = sim_factory("--clock", "virtual", "--state-dir", str(state_dir))
    charger = again.charger(session)
    assert (await charger.get("metervalue"))["RD"][0]["RV"] == "00000001.000"
    assert again.signal(signal.SIGINT) == 0


async def test_three_meters_have_distinct_serials_ports_and_keys(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    sim = sim_factory("--meters", "3", "--clock", "virtual", "--state-dir", str(state_dir))
    assert [m.serial for m in sim.meters] == ["1ISA0200000001", "1ISA0200000002", "1ISA0200000003"]
    assert len({m.url for m in sim.meters}) == 3
    assert len({m.fingerprint for m in sim.meters}) == 3
    keys = set()
    for index, line in enumerate(sim.meters):
        charger = sim.charger(session, index)
        assert (await charger.get("metervalue"))["MS"] == line.serial
        key = (await charger.get("publickey"))["PK"]
        assert hashlib.sha256(bytes.fromhex(key)).hexdigest()[:16] == line.fingerprint
        keys.add(key)
    assert len(keys) == 3
    listed = await sim.charger(session).lab("GET", "/api/meters")
    assert [(m["serial"], m["url"]) for m in listed["meters"]] == [(m.serial, m.url) for m in sim.meters]
    assert sorted(p.name for p in state_dir.iterdir()) == [m.serial for m in sim.meters]
    assert sim.signal(signal.SIGTERM) == 0


async def test_sigterm_right_after_the_startup_lines_exits_0(sim_factory: SimFactory) -> None:
    """A supervisor may stop the twin as soon as it reads the control line."""
    for _ in range(3):
        assert sim_factory("--clock", "virtual").signal(signal.SIGTERM) == 0


async def test_json_startup_lines_and_seeded_keys(sim_factory: SimFactory, session: aiohttp.ClientSession) -> None:
    first = sim_factory("--log-format", "json", "--seed", "lab", "--profile", "iem-dcr-1500", "--clock", "virtual")
    events = [json.loads(line) for line in first.lines]
    assert [e["event"] for e in events] == ["meter", "control"]
    assert events[0]["serial"] == first.meter.serial == "1ISA0215000001"
    assert events[0]["model"] == "IEM-DCR-1500-1000-32-00-006-B_000"
    assert first.signal(signal.SIGTERM) == 0
    logged = first.stderr().splitlines()
    assert logged  # at least "shutting down"
    for line in logged:
        assert isinstance(json.loads(line), dict)  # logs are JSON too
    # without a state dir, the same seed gives the same key
    second = sim_factory("--seed", "lab", "--profile", "iem-dcr-1500")
    assert second.meter.fingerprint == first.meter.fingerprint
    assert second.clock == "real"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("iemdcr-sim"), *args], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["serve", "--set", "nope=1", "--port", "0", "--control-port", "0"], "--set nope=1: unknown switch"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--control-port", "-3"], "--control-port"),
        (["serve", "--meters", "0"], "--meters"),
        (["serve", "--set", "v1_transaction=perhaps", "--port", "0", "--control-port", "0"], "v1_transaction"),
        (["serve", "--clock", "virtual", "--epoch", "1e12", "--port", "0", "--control-port", "0"], "--epoch"),
        (["serve", "--epoch", "9999-12-31T23:59:00Z", "--port", "0", "--control-port", "0"], "--epoch"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(args: list[str], named: str) -> None:
    result = _run_cli(*args)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_parse_line() -> None:
    assert parse_line("control url=http://127.0.0.1:1 clock=virtual\n") == (
        "control",
        {"url": "http://127.0.0.1:1", "clock": "virtual"},
    )


def _dockerfile_healthcheck(port: int) -> list[str]:
    """The Dockerfile's HEALTHCHECK command, run by this interpreter against ``port`` instead of 8090."""
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text(encoding="utf-8")
    command = json.loads(text.split("HEALTHCHECK", 1)[1].split("CMD", 1)[1].splitlines()[0].strip())
    assert command[:2] == ["python3", "-c"] and "http://127.0.0.1:8090/healthz" in command[2]
    return [sys.executable, "-c", command[2].replace(":8090/", f":{port}/")]


async def test_an_open_bind_without_a_token_warns_on_stderr_and_keeps_its_guards(
    sim_factory: SimFactory, session: aiohttp.ClientSession
) -> None:
    """As the Docker image starts it (0.0.0.0, no token): a warning in the log, never among the startup lines;
    the image's health check passes; loopback names are answered and a rebound name is not."""
    sim = sim_factory("--host", "0.0.0.0", "--log-format", "json")
    assert [json.loads(line)["event"] for line in sim.lines] == ["meter", "control"]
    warnings = [json.loads(line) for line in sim.stderr().splitlines()]
    assert [(w["level"], "without a token" in w["message"]) for w in warnings] == [("WARNING", True)]
    port = int(sim.control.rsplit(":", 1)[1])
    assert subprocess.run(_dockerfile_healthcheck(port), timeout=30, check=False).returncode == 0
    async with session.get(f"http://127.0.0.1:{port}/api/meters") as resp:
        assert resp.status == 200
    async with session.get(f"http://localhost:{port}/api/meters") as resp:
        assert resp.status == 200
    async with session.get(f"http://127.0.0.1:{port}/api/meters", headers={"Host": "rebound.example"}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (403, "host_not_allowed")
    assert sim.signal(signal.SIGTERM) == 0
    quiet = sim_factory("--host", "0.0.0.0", "--control-token", "s3cret")
    assert quiet.signal(signal.SIGTERM) == 0
    assert "without a token" not in quiet.stderr()


def _send_raw(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_requests_the_http_parser_refuses_write_one_line_each_and_no_traceback(sim_factory: SimFactory) -> None:
    """Raw malformed requests to a meter port and the control port of the real process: each gets aiohttp's
    plain-text 400 and at most one line in the log, never a traceback."""
    sim = sim_factory()
    ports = [int(sim.meter.url.rsplit(":", 1)[1]), int(sim.control.rsplit(":", 1)[1])]
    sent = 0
    for port in ports:
        for raw in MALFORMED.values():
            assert _send_raw(port, raw).startswith(b"HTTP/1.0 400 Bad Request\r\n")
            sent += 1
    assert _send_raw(ports[0], UNREAD_BAD_GZIP).startswith(b"HTTP/1.1 200 OK\r\n")
    sent += 1
    assert sim.signal(signal.SIGTERM) == 0
    lines = sim.stderr().splitlines()
    refused = [line for line in lines if "refused a malformed HTTP request" in line]
    assert "Traceback" not in sim.stderr()
    assert 1 <= len(refused) <= sent and lines == [*refused, "INFO iemdcr: shutting down"], lines


def test_an_empty_state_dir_is_refused_and_writes_nothing_here(tmp_path: Path) -> None:
    """``--state-dir ""`` would be the current folder: meters' folders would land beside whatever is there."""
    command = [console_script("iemdcr-sim"), "serve", "--state-dir", "", "--port", "0", "--control-port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path)
    assert done.returncode == 2
    assert "argument --state-dir: must name a folder, not be empty" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []


async def test_the_clock_stops_short_of_what_a_meter_can_show_and_the_meter_never_fails_to_show_its_time(
    sim_factory: SimFactory, session: aiohttp.ClientSession
) -> None:
    """Ten years on from December 9998 would be past the year 9999: the advance is refused (400, ``seconds``
    named) and the meter still answers. A meter time set ahead of the clock and run past the end shows the last
    time it can (docs/fidelity.md) rather than failing every read."""
    charger = sim_factory("--clock", "virtual", "--epoch", "9998-12-01T00:00:00Z").charger(session)
    await charger.freeze_clock()
    before = await charger.lab("GET", "/api/clock")
    async with session.post(f"{charger.control}/api/clock/advance", json={"seconds": 315_360_000}) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"] == "time_out_of_range"
    assert body["message"].startswith("seconds 315360000 would take the clock past 9998-12-31T23:59:59Z")
    assert await charger.lab("GET", "/api/clock") == before  # nothing moved
    assert (await charger.get("metervalue"))["TM"].startswith("9998-12-01T00:00:")
    await charger.post("datetime", {"TM": "9998-12-31T23:00:00,000+0000"})  # a month ahead of the clock
    await charger.advance(30 * 86_400)  # the clock: 9998-12-31T00:00Z; the meter's own time: past its end
    assert (await charger.get("metervalue"))["TM"].startswith("9998-12-31T23:59:59,999+0000")
    assert (await charger.get("datetime"))["TM"].startswith("9998-12-31T23:59:59,999+0000")
