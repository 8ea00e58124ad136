"""The `iemdcr-driver` command line, run in-process on the virtual clock against the fake meter."""

from __future__ import annotations

import io
import json
import socket

import pytest

from iemdcr_twin.driver import cli

from .fake_meter import FakeMeter
from .vclock import VirtualClock


async def run_cli(argv: list[str], clock: VirtualClock) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = await cli.run(argv, clock=clock, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


async def test_monitor_prints_json_lines(meter_url: str, clock: VirtualClock, meter: FakeMeter) -> None:
    meter.current_a = 0.5
    code, lines = await run_cli(["--url", meter_url, "monitor", "--count", "3"], clock)
    assert code == 0
    events = [line["event"] for line in lines]
    assert events.count("powermeter") == 3
    assert events[:3] == ["public_key_ocmf", "powermeter", "initialised"]
    pm = next(line["data"] for line in lines if line["event"] == "powermeter")
    assert pm["current_A"] == {"DC": 0.5} and pm["meter_id"] == "1ISA0200000001"  # type: ignore[index]


async def test_start_then_stop(meter_url: str, clock: VirtualClock, meter: FakeMeter) -> None:
    argv = ["--url", meter_url, "--ci", "C1", "--no-dst", "--retries", "1"]
    code, lines = await run_cli(
        [
            *argv,
            "start",
            "--evse-id",
            "C1",
            "--transaction-id",
            "t-1",
            "--id-status",
            "ASSIGNED",
            "--id-type",
            "ISO14443",
            "--id-level",
            "VERIFIED",
            "--id-flag",
            "RFID_PLAIN",
            "--id-flag",
            "OCPP_AUTH",
            "--id-data",
            "04AB",
            "--tariff-text",
            "0.40 EUR/kWh",
        ],
        clock,
    )
    assert (code, lines) == (0, [{"status": "OK", "error": ""}])
    assert meter.user == {
        "IS": True,
        "IL": "VERIFIED",
        "IF": ["RFID_PLAIN", "OCPP_AUTH"],
        "IT": "ISO14443",
        "ID": "04AB",
        "US": False,
        "TT": "0.40 EUR/kWh",
    }
    assert meter.ci == "C1" and meter.xt
    code, lines = await run_cli([*argv, "stop", "--transaction-id", "t-1"], clock)
    assert code == 0
    assert lines[0]["status"] == "OK"
    assert lines[0]["signed_meter_value"]["signed_meter_data"] == meter.records[-1]  # type: ignore[index]


async def test_start_refused_exits_1(meter_url: str, clock: VirtualClock) -> None:
    code, lines = await run_cli(["--url", meter_url, "start", "--evse-id", "other", "--transaction-id", "t"], clock)
    assert code == 1 and lines[0]["status"] == "NOT_SUPPORTED"


async def test_stop_with_unreachable_meter_exits_1(clock: VirtualClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, lines = await run_cli(["--url", f"http://127.0.0.1:{port}", "stop"], clock)
    assert code == 1 and lines[0]["status"] == "UNEXPECTED_ERROR"
    assert "meter not ready" in lines[0]["error"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--url", "http://x:1", "--timezone", "+01:00", "stop"], "--timezone"),
        (["--url", "http://x:1", "--retries", "9", "stop"], "--retries"),
        (["--url", "http://x:1", "--retry-delay-ms", "abc", "stop"], "--retry-delay-ms"),
        (["--url", "http://x:1", "--init-retry-delay-ms", "5", "stop"], "--init-retry-delay-ms"),
        (["--url", "http://x:1", "--datetime-resync-interval", "30", "stop"], "--datetime-resync-interval"),
        (["--url", "http://x:1", "--timeout-s", "0", "stop"], "--timeout-s"),
        (["--url", "http://x:1", "--ct", "", "stop"], "--ct"),
        (["--url", "ftp://x", "stop"], "--url"),
        (["--url", "http://x:1", "start", "--transaction-id", "t", "--id-type", "BOGUS"], "--id-type"),
        (["--url", "http://x:1", "monitor", "--count", "0"], "--count"),
        (["--url", "http://x:1", "start", "--transaction-id", "t"] + ["--id-flag", "RFID_NONE"] * 5, "--id-flag"),
    ],
)
async def test_bad_flags_name_the_flag(
    argv: list[str], flag: str, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(argv, clock=clock)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err
