"""Every validator on wire, CLI, config and file input takes ASCII digits only, matched in full (issue 12.6).

Python's ``\\d`` matches any Unicode digit, ``int()``/``float()``/``Decimal()`` convert them, ``str.isdigit()``
is true for them, and ``$`` matches before a trailing newline. Each validator below is given a value it takes,
then the same value spoiled: its digits written in Arabic-Indic (``٠١٢``), fullwidth (``０１２``) or
Devanagari (``०१२``) digits, one digit only swapped, or a trailing newline. Each spoiled value must be
refused with an error that names the key or flag, and must change nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from nacl.signing import SigningKey

from iemdcr_twin.driver import cli as driver_cli
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.controller import kwh_to_wh
from iemdcr_twin.driver.errors import UnexpectedBody
from iemdcr_twin.simulator import cli as sim_cli
from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.conformance.signing import fingerprint, sign_report
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from iemdcr_twin.simulator.fleet_file import FleetFileError, load_fleet
from iemdcr_twin.simulator.model import Switches
from iemdcr_twin.simulator.model.profiles import DEFAULT_PROFILE
from iemdcr_twin.simulator.scenario.durations import parse_duration
from iemdcr_twin.simulator.scenario.loader import ScenarioFileError, load_text
from iemdcr_twin.simulator.scenario.records import pagination
from tests.support.http import json_error, json_ok
from tests.support.meter import GW
from tests.support.twin import S1, meter_url, new_twin

HANG_GUARD_S = 30.0
SCRIPTS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "fullwidth": "０１２３４５６７８９",
    "devanagari": "०१२३४५६७८९",
}


def unicode_digits(valid: str) -> list[Any]:
    """``valid`` with every ASCII digit in each script, and with only its last digit in Arabic-Indic."""
    spoiled = [
        pytest.param(valid.translate(str.maketrans("0123456789", digits)), id=name) for name, digits in SCRIPTS.items()
    ]
    last = max(index for index, char in enumerate(valid) if char.isdigit())
    one = valid[:last] + SCRIPTS["arabic-indic"][int(valid[last])] + valid[last + 1 :]
    return [*spoiled, pytest.param(one, id="one-digit")]


def spoiled(valid: str) -> list[Any]:
    """The Unicode-digit variants of ``valid`` and ``valid`` with a trailing newline."""
    return [*unicode_digits(valid), pytest.param(valid + "\n", id="newline")]


def test_the_variants_differ_from_the_valid_value_and_look_like_numbers() -> None:
    for param in spoiled("+0100"):
        value = param.values[0]
        assert value != "+0100"
        assert value.strip() == "+0100" or not value.isascii()


# ---- the meter API (wire) ----------------------------------------------------------------------------------

TM = GW["TM"]


@pytest.fixture
async def apis(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
) -> AsyncIterator[tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession]]:
    """A one-meter twin: its control app (which starts the meter's listener) and a session for the meter port."""
    twin = new_twin()
    control = await aiohttp_client(create_control_app(twin))
    async with aiohttp.ClientSession() as session:
        yield twin, control, session


async def test_meter_api_takes_an_ascii_time(apis: tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession]) -> None:
    twin, _, session = apis
    async with session.post(meter_url(twin, "datetime"), json={"TM": TM}) as resp:
        assert (await json_ok(resp))["TM"].startswith(TM)


@pytest.mark.parametrize("tm", spoiled(TM))
async def test_meter_api_refuses_a_time_with_other_digits_or_a_newline(
    apis: tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession], tm: str
) -> None:
    twin, _, session = apis
    meter = twin.slot(S1).meter
    before = view.snapshot(meter)
    for node, body in (("datetime", {"TM": tm}), ("gw", {**GW, "TM": tm})):
        async with session.post(meter_url(twin, node), json=body) as resp:
            await json_error(resp, 400, "bad_time", "TM")
    assert view.snapshot(meter) == before


# ---- the control API (query strings and switch values) -------------------------------------------------------


@pytest.mark.parametrize("key", ["since", "limit"])
async def test_control_api_journal_takes_ascii_numbers(
    apis: tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession], key: str
) -> None:
    _, control, _ = apis
    await json_ok(await control.get(f"/api/meters/{S1}/journal", params={key: "12"}))


@pytest.mark.parametrize("value", spoiled("12"))
@pytest.mark.parametrize("key", ["since", "limit"])
async def test_control_api_journal_refuses_other_digits_or_a_newline(
    apis: tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession], key: str, value: str
) -> None:
    twin, control, session = apis
    async with session.get(meter_url(twin, "metervalue")) as resp:
        await json_ok(resp)
    entries = await json_ok(await control.get(f"/api/meters/{S1}/journal"))
    await json_error(await control.get(f"/api/meters/{S1}/journal", params={key: value}), 400, "bad_query", key)
    assert await json_ok(await control.get(f"/api/meters/{S1}/journal")) == entries


@pytest.mark.parametrize("value", spoiled("T1"))
async def test_control_api_records_refuse_a_pg_with_other_digits_or_a_newline(
    apis: tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession], value: str
) -> None:
    _, control, _ = apis
    await json_error(await control.get(f"/api/meters/{S1}/records", params={"pg": value}), 400, "bad_query", "pg")


@pytest.mark.parametrize("value", spoiled("250"))
async def test_control_api_switches_refuse_digits_in_text(
    apis: tuple[Twin, TestClient[Any, Any], aiohttp.ClientSession], value: str
) -> None:
    twin, control, _ = apis
    before = twin.slot(S1).meter.switches
    resp = await control.patch(f"/api/meters/{S1}/profile", json={"signature_delay_ms": value})
    await json_error(resp, 400, "bad_switch", "signature_delay_ms")
    assert twin.slot(S1).meter.switches == before


# ---- fleet files and serials -------------------------------------------------------------------------------


def write_fleet(tmp_path: Path, meter: dict[str, Any]) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"meters": [meter]}, allow_unicode=True), encoding="utf-8")
    return path


def test_fleet_file_takes_an_ascii_serial_and_port(tmp_path: Path) -> None:
    (spec,) = load_fleet(write_fleet(tmp_path, {"port": 8080, "serial": "1ISA0200000042"}), DEFAULT_PROFILE)
    assert (spec.port, spec.serial) == (8080, "1ISA0200000042")


@pytest.mark.parametrize("serial", spoiled("1ISA0200000042"))
def test_fleet_file_refuses_a_serial_with_other_digits_or_a_newline(tmp_path: Path, serial: str) -> None:
    path = write_fleet(tmp_path, {"port": 0, "serial": serial})
    with pytest.raises(FleetFileError, match=r"fleet\.yaml: meters\[0\]\.serial: .*ASCII digits"):
        load_fleet(path, DEFAULT_PROFILE)


@pytest.mark.parametrize("port", spoiled("8080"))
def test_fleet_file_refuses_a_port_in_other_digits(tmp_path: Path, port: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(f"meters:\n  - port: {json.dumps(port, ensure_ascii=False)}\n", encoding="utf-8")
    with pytest.raises(FleetFileError, match=r"fleet\.yaml: meters\[0\]\.port: must be a port number"):
        load_fleet(path, DEFAULT_PROFILE)


@pytest.mark.parametrize("serial", spoiled("1ISA0200000042"))
def test_a_twin_refuses_a_serial_with_other_digits_or_a_newline(serial: str) -> None:
    twin = Twin(seed="ascii")
    with pytest.raises(ValueError, match="ASCII digits"):
        twin.add_meter(MeterSpec(port=0, serial=serial))
    assert twin.slots == {}


# ---- iemdcr-sim serve flags and --set ------------------------------------------------------------------------

SERVE_FLAGS = [
    ("--port", "8080"),
    ("--control-port", "8090"),
    ("--meters", "3"),
    ("--journal-size", "100"),
    ("--epoch", "1750000000"),
    ("--epoch", "2025-06-06T08:00:00+00:00"),
    ("--idle-timeout", "20"),
]


@pytest.mark.parametrize(("flag", "valid"), SERVE_FLAGS)
def test_serve_flags_take_ascii_numbers(flag: str, valid: str) -> None:
    sim_cli.build_parser().parse_args(["serve", flag, valid])


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        pytest.param(flag, *param.values, id=f"{flag}-{valid}-{param.id}")
        for flag, valid in SERVE_FLAGS
        for param in spoiled(valid)
    ],
)
def test_serve_flags_refuse_other_digits_or_a_newline(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        sim_cli.build_parser().parse_args(["serve", flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}:" in capsys.readouterr().err


SWITCHES = [("signature_delay_ms", "250"), ("response_latency_ms", "40"), ("activation_threshold_A", "1.5")]


@pytest.mark.parametrize(("key", "valid"), [*SWITCHES, ("v1_transaction", "0")])
def test_set_takes_ascii_switch_values(key: str, valid: str) -> None:
    Switches().updated_from_text([f"{key}={valid}"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(key, *param.values, id=f"{key}-{param.id}")
        for key, valid in [*SWITCHES, ("v1_transaction", "0")]
        for param in spoiled(valid)
    ],
)
def test_set_refuses_switch_values_in_other_digits_or_with_a_newline(
    key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = sim_cli.build_parser().parse_args(["serve", "--port", "0", "--set", f"{key}={value}"])
    with pytest.raises(SystemExit) as exc:
        sim_cli.build_twin(args)
    assert exc.value.code == 2
    assert f"switch {key} must be" in capsys.readouterr().err


# ---- scenario files and durations ----------------------------------------------------------------------------


def scenario(**changes: Any) -> str:
    data: dict[str, Any] = {"version": 1, "name": "ascii", "steps": [{"advance": "30s"}]}
    data.update(changes)
    return yaml.safe_dump(data, allow_unicode=True)


def test_a_scenario_with_ascii_values_loads() -> None:
    text = scenario(
        epoch="2025-06-06T08:00:00+00:00",
        meter={"serial": "1ISA0200000042"},
        driver={"timezone": "+0100", "request_timeout": "2s"},
        steps=[{"advance": "30s"}, {"mark": "m1"}, {"start": {}}, {"expect_record": {"pagination": "T1"}}],
    )
    load_text(text, Path("ascii.yaml"))
    assert parse_duration("30s") == 30.0


@pytest.mark.parametrize("value", spoiled("30s"))
def test_durations_refuse_other_digits_or_a_newline(value: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def scenario_cases() -> list[Any]:
    cases: list[Any] = []

    def add(key: str, valid: str, make: Callable[[str], str]) -> None:
        cases.extend(pytest.param(make(param.values[0]), key, id=f"{key}-{param.id}") for param in spoiled(valid))

    add("advance", "30s", lambda v: scenario(steps=[{"advance": v}]))
    add("serial", "1ISA0200000042", lambda v: scenario(meter={"serial": v}))
    add("epoch", "2025-06-06T08:00:00+00:00", lambda v: scenario(epoch=v))
    add("timezone", "+0100", lambda v: scenario(driver={"timezone": v}))
    add("request_timeout", "2s", lambda v: scenario(driver={"request_timeout": v}))
    add("mark", "m1", lambda v: scenario(steps=[{"mark": v}]))
    add(
        "pagination",
        "T1",
        lambda v: scenario(steps=[{"start": {}}, {"expect_record": {"pagination": v}}]),
    )
    cases.append(pytest.param(scenario(name="ascii\n"), "name", id="name-newline"))
    return cases


@pytest.mark.parametrize(("text", "key"), scenario_cases())
def test_scenario_files_refuse_other_digits_or_a_newline(text: str, key: str) -> None:
    with pytest.raises(ScenarioFileError) as refused:
        load_text(text, Path("spoiled.yaml"))
    assert all(message.startswith("spoiled.yaml: ") for message in refused.value.messages)
    assert key in str(refused.value), refused.value.messages


@pytest.mark.parametrize("value", unicode_digits("T12"))
def test_scenario_record_checks_read_an_ascii_pg_only(value: str) -> None:
    assert pagination({"PG": "T12"}) == 12
    with pytest.raises(ValueError, match="is not T<n>"):
        pagination({"PG": value})


# ---- the driver: DriverConfig, its CLI, the registers it reads -----------------------------------------------


def test_driver_config_takes_ascii_values() -> None:
    assert DriverConfig(timezone="+0130").timezone_offset_s == 5400
    assert DriverConfig.from_url("http://127.0.0.1:8080").port_http == 8080


@pytest.mark.parametrize("timezone", spoiled("+0100"))
def test_driver_config_refuses_a_timezone_in_other_digits_or_with_a_newline(timezone: str) -> None:
    with pytest.raises(ValueError, match=r"^timezone: "):
        DriverConfig(timezone=timezone)


@pytest.mark.parametrize("url", spoiled("http://127.0.0.1:8080"))
def test_driver_config_refuses_a_url_in_other_digits_or_with_a_newline(url: str) -> None:
    with pytest.raises(ValueError, match=r"^url: "):
        DriverConfig.from_url(url)


@pytest.mark.parametrize("address", spoiled("127.0.0.1"))
def test_driver_config_refuses_an_address_in_other_digits_or_with_a_newline(address: str) -> None:
    with pytest.raises(ValueError, match=r"^ip_address: "):
        DriverConfig(ip_address=address)


DRIVER_FLAGS = [
    ("--timezone", "+0100"),
    ("--datetime-resync-interval", "2"),
    ("--retries", "3"),
    ("--retry-delay-ms", "250"),
    ("--init-retry-delay-ms", "10000"),
    ("--timeout-s", "5"),
    ("--url", "http://127.0.0.1:9"),  # the discard port: nothing answers there if a check were ever skipped
]


def driver_argv(flag: str, value: str) -> list[str]:
    base = {"--url": "http://127.0.0.1:9"}
    base[flag] = value
    return [item for pair in base.items() for item in pair] + ["stop"]


@pytest.mark.parametrize(("flag", "valid"), [*DRIVER_FLAGS, ("--count", "3")])
def test_driver_cli_takes_ascii_values(flag: str, valid: str) -> None:
    parser = driver_cli.build_parser()
    if flag == "--count":
        args = parser.parse_args(["--url", "http://127.0.0.1:9", "monitor", "--count", valid])
    else:
        args = parser.parse_args(driver_argv(flag, valid))
    driver_cli.config_from_args(args)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        pytest.param(flag, *param.values, id=f"{flag}-{param.id}")
        for flag, valid in DRIVER_FLAGS
        for param in spoiled(valid)
    ]
    + [pytest.param("--count", *param.values, id=f"--count-{param.id}") for param in spoiled("3")],
)
async def test_driver_cli_refuses_other_digits_or_a_newline(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = (
        ["--url", "http://127.0.0.1:9", "monitor", "--count", value] if flag == "--count" else driver_argv(flag, value)
    )
    # refused while parsing, before any request; the guard only stops a driver that would monitor for ever
    with pytest.raises(SystemExit) as exit_:
        async with asyncio.timeout(HANG_GUARD_S):
            await driver_cli.run(argv)
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("register", unicode_digits("00000001.500"))
def test_driver_refuses_a_register_in_other_digits(register: str) -> None:
    assert kwh_to_wh("00000001.500", "metervalue", "RV") == 1500.0
    with pytest.raises(UnexpectedBody, match="is not a number"):
        kwh_to_wh(register, "metervalue", "RV")


# ---- iemdcr-sim conformance ------------------------------------------------------------------------------------


@pytest.mark.parametrize("serial", spoiled("1ISA0200000042"))
def test_conformance_report_refuses_a_serial_before_any_request(
    serial: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    state = tmp_path / "state"
    argv = ["conformance", "report", "--url", "http://127.0.0.1:9", "--serial", serial]
    assert sim_cli.main([*argv, "--out", str(out), "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert "--serial" in err and "cannot reach" not in err
    assert not out.exists() and not state.exists()  # no report written, no lab key made


@pytest.mark.parametrize("timeout", spoiled("10"))
def test_conformance_report_refuses_a_timeout_in_other_digits(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = sim_cli.build_parser()
    parser.parse_args(["conformance", "report", "--url", "http://h:1", "--serial", S1, "--timeout", "10"])
    with pytest.raises(SystemExit):
        parser.parse_args(["conformance", "report", "--url", "http://h:1", "--serial", S1, "--timeout", timeout])
    assert "--timeout" in capsys.readouterr().err


def test_conformance_verify_refuses_a_pinned_key_in_other_digits_or_with_a_newline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = SigningKey.generate()
    document = sign_report({"meter": {"serial": S1}, "verdict": "pass", "checks": []}, key)
    path = tmp_path / "signed.json"
    path.write_text(json.dumps(document))
    pinned = fingerprint(key.verify_key.encode())
    if not any(char.isdigit() for char in pinned):  # pragma: no cover - one fingerprint in 4 billion
        pytest.skip("this fingerprint has no decimal digit to spoil")
    assert sim_cli.main(["conformance", "verify", str(path), "--key", pinned]) == 0
    for param in spoiled(pinned):
        capsys.readouterr()
        assert sim_cli.main(["conformance", "verify", str(path), "--key", param.values[0]]) == 1, param.id
        assert "expected an Ed25519 public key" in capsys.readouterr().err, param.id
