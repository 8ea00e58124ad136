"""The `iemdcr-driver` command line, run in-process on the virtual clock against the twin."""

from __future__ import annotations

import io
import json
import socket

import pytest

from iemdcr_twin.driver import cli
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSlot
from tests.support.twin import requests_to, wire


async def run_cli(argv: list[str], clock: SimClock) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = await cli.run(argv, clock=clock, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


async def test_monitor_prints_json_lines(slot: MeterSlot, clock: SimClock) -> None:
    slot.meter.set_load(0.5, 400.0)
    code, lines = await run_cli(["--url", slot.url, "monitor", "--count", "3"], clock)
    assert code == 0
    events = [line["event"] for line in lines]
    assert events.count("powermeter") == 3
    assert events[:3] == ["public_key_ocmf", "powermeter", "initialised"]
    pm = next(line["data"] for line in lines if line["event"] == "powermeter")
    assert pm["current_A"] == {"DC": 0.5} and pm["meter_id"] == "1ISA0200000001"  # type: ignore[index]


async def test_start_then_stop(slot: MeterSlot, clock: SimClock) -> None:
    argv = ["--url", slot.url, "--ci", "C1", "--no-dst", "--retries", "1"]
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
    assert requests_to(slot, "POST", "user")[-1].body == {
        "IS": True,
        "IL": "VERIFIED",
        "IF": ["RFID_PLAIN", "OCPP_AUTH"],
        "IT": "ISO14443",
        "ID": "04AB",
        "US": False,
        "TT": "0.40 EUR/kWh",
    }
    assert slot.meter.CI == "C1" and slot.meter.transaction is not None
    code, lines = await run_cli([*argv, "stop", "--transaction-id", "t-1"], clock)
    assert code == 0
    assert lines[0]["status"] == "OK"
    assert lines[0]["signed_meter_value"]["signed_meter_data"] == slot.meter.records[-1].ocmf  # type: ignore[index]


async def test_start_refused_exits_1(slot: MeterSlot, clock: SimClock) -> None:
    code, lines = await run_cli(["--url", slot.url, "start", "--evse-id", "other", "--transaction-id", "t"], clock)
    assert code == 1 and lines[0]["status"] == "NOT_SUPPORTED"


async def test_stop_with_unreachable_meter_exits_1(clock: SimClock) -> None:
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
    argv: list[str], flag: str, clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(argv, clock=clock)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


ARABIC_INDIC_3 = "\u0663"  # ٣
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10)))


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timezone", "+0100".translate(FULLWIDTH)),
        ("--timezone", "+" + "".join(chr(0x0660 + int(d)) for d in "0100")),
        ("--timezone", "+0\u0661" + "00"),  # +0١00: `[01]\\d` matched it, int() read 1
        ("--timezone", "+0100\n"),
        ("--timezone", "Europe/Berlin\n"),
        ("--retries", ARABIC_INDIC_3),
        ("--retries", "3\n"),
        ("--retries", " 3"),
        ("--retry-delay-ms", "250".translate(FULLWIDTH)),
        ("--init-retry-delay-ms", "10000\n"),
        ("--datetime-resync-interval", "2".translate(FULLWIDTH)),
        ("--signature-timeout-ms", "10000".translate(FULLWIDTH)),
        ("--signature-timeout-ms", "100"),
        ("--timeout-s", "5".translate(FULLWIDTH)),
        ("--timeout-s", "1.5\n"),
        ("--ci", "1234\n"),
        ("--ct", "EVSEID".translate(FULLWIDTH) + "\n"),
        ("--url", "http://127.0.0.1:80\n"),
        ("--url", "http://127.0.0.1:" + "80".translate(FULLWIDTH)),
    ],
)
async def test_non_ascii_digits_and_trailing_newlines_are_refused_naming_the_flag(
    flag: str, value: str, clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """int(), float() and a `\\d...$` pattern accept these; every check uses ASCII classes and full matches."""
    argv = ["--url", "http://x:1", flag, value, "stop"] if flag != "--url" else ["--url", value, "stop"]
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(argv, clock=clock)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


async def test_ascii_numbers_and_zone_names_are_accepted() -> None:
    flags = ["--timezone", "Europe/Berlin", "--timeout-s", ".5", "--signature-timeout-ms", "20000", "--retries", "0"]
    args = cli.build_parser().parse_args(["--url", "http://x:1", *flags, "stop"])
    config = cli.config_from_args(args)
    assert (config.timezone, config.request_timeout_s, config.signature_timeout_ms) == ("Europe/Berlin", 0.5, 20000)
    assert config.resilience_transaction_request_retries == 0


async def test_stop_in_a_new_process_does_not_write_the_time_during_the_transaction(
    slot: MeterSlot, clock: SimClock
) -> None:
    """Fix 17: `iemdcr-driver stop` is a new driver on a meter that kept its CT and CI; a transaction runs."""
    argv = ["--url", slot.url, "--ci", "C1", "--retries", "1"]
    code, _ = await run_cli([*argv, "start", "--evse-id", "C1", "--transaction-id", "t-1"], clock)
    assert code == 0 and slot.meter.transaction is not None
    sent = slot.host.journal.last_seq
    code, lines = await run_cli([*argv, "stop", "--transaction-id", "t-1"], clock)
    assert code == 0 and lines[0]["status"] == "OK"
    writes = [(e.method, e.node) for e in wire(slot, sent) if e.method == "POST"]
    assert writes == [("POST", "receipt")]  # before fix 17: POST gw (428); C++ then POST datetime too


async def test_start_prints_the_record_of_the_transaction_it_ended(slot: MeterSlot, clock: SimClock) -> None:
    """Fix 16: a start in a new process that ends a running transaction prints its record before the response."""
    argv = ["--url", slot.url, "--ci", "C1"]
    await run_cli([*argv, "start", "--evse-id", "C1", "--transaction-id", "t-1", "--id-data", "AAAA"], clock)
    code, lines = await run_cli([*argv, "start", "--evse-id", "C1", "--transaction-id", "t-2"], clock)
    assert code == 0 and len(lines) == 2
    assert lines[0]["event"] == "transaction_ended"
    data = lines[0]["data"]
    assert data["transaction_id"] == ""  # a new process does not know which transaction it was
    assert data["signed_meter_value"]["signed_meter_data"] == slot.meter.records[0].ocmf  # type: ignore[index]
    assert lines[1] == {"status": "OK", "error": ""}


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory"])
async def test_host_dependent_zone_names_are_refused_naming_the_flag(
    zone: str, clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(["--url", "http://x:1", "--timezone", zone, "stop"], clock=clock)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--timezone" in err and "host" in err


@pytest.mark.parametrize("value", ["-1", "1e9", "inf", "99999999999", "3600.5"])
async def test_timeout_s_out_of_range_says_what_it_takes_not_ascii_digits(
    value: str, clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-1` and `1e9` are ASCII; the message names the range (above 0, at most 3600 s) and no ASCII digits."""
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(["--url", "http://x:1", "--timeout-s", value, "stop"], clock=clock)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--timeout-s" in err and "above 0 and at most 3600" in err and "ASCII" not in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--retries", "1e3"), ("--retries", "1.5"), ("--count", "x1"), ("--signature-timeout-ms", "9" * 5000)],
)
async def test_ascii_text_that_is_no_integer_is_not_called_non_ascii(
    flag: str, value: str, clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = (
        ["--url", "http://x:1", flag, value, "stop"]
        if flag != "--count"
        else ["--url", "http://x:1", "monitor", flag, value]
    )
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(argv, clock=clock)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "must be an integer" in err and "ASCII" not in err


async def test_timeout_s_up_to_an_hour_is_accepted() -> None:
    args = cli.build_parser().parse_args(["--url", "http://x:1", "--timeout-s", "3600", "stop"])
    assert cli.config_from_args(args).request_timeout_s == 3600.0


async def test_start_refuses_an_empty_transaction_id_naming_the_flag(
    clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """--transaction-id is required for `start`: an empty one is as good as none and begins no transaction."""
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(["--url", "http://x:1", "start", "--transaction-id", ""], clock=clock)
    assert exit_info.value.code == 2
    assert "--transaction-id" in capsys.readouterr().err


async def test_stop_help_says_a_new_process_returns_the_last_record(
    clock: SimClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each CLI call is a new driver: fix 13 cannot apply across calls, and the help says what stop gives then."""
    with pytest.raises(SystemExit) as exit_info:
        await cli.run(["--url", "http://x:1", "stop", "--help"], clock=clock)
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "new process" in text and "refused start" in text and "last record" in text
    assert "not checked against the record" in text and "ID and PG" in text
