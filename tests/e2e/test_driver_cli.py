"""`iemdcr-driver` (monitor, start, stop) against the real `iemdcr-sim serve` process.

The twin process comes from the e2e conftest (`sim_factory`: it reads the startup lines, never sleeps). Each
CLI call is its own process with a fresh driver, as a technician would run it: the second call finds gw
already written (428, a warning) and goes on. The CLI runs in real time: `start` waits 250 ms after the
defensive E, `stop` 250 ms before GET receipt, `monitor --count 2` one poll interval.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyocmf import OCMF

from tests.support.driver import CI, RFID
from tests.support.processes import Sim, SimFactory, console_script

pytestmark = pytest.mark.e2e  # starts the installed iemdcr-sim / iemdcr-driver

CLI_TIMEOUT_S = 60.0  # a guard against a hung CLI, never a wait
POWERMETER_KEYS = {"timestamp", "meter_id", "energy_Wh_import", "energy_Wh_export", "power_W", "voltage_V", "current_A"}


def cli_command() -> list[str]:
    """The installed ``iemdcr-driver`` console script."""
    return [console_script("iemdcr-driver")]


def run_cli(sim: Sim, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run `iemdcr-driver --url <meter> --ci CI ARGS`; returns exit code, stdout as JSON lines, stderr."""
    command = [*cli_command(), "--url", sim.meter.url, "--ci", CI, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines, done.stderr


def start_args(transaction_id: str = "t-1", *extra: str) -> list[str]:
    return [
        "start",
        "--transaction-id",
        transaction_id,
        "--evse-id",
        CI,
        "--id-status",
        "ASSIGNED",
        "--id-type",
        "ISO14443",
        "--id-level",
        "VERIFIED",
        "--id-flag",
        "RFID_PLAIN",
        *extra,
    ]


def meter_get(sim: Sim, node: str) -> tuple[int, bytes]:
    """GET on the meter API (what any HTTP client sees)."""
    try:
        with urllib.request.urlopen(sim.meter.url + "/counter/" + node, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def journal(sim: Sim) -> list[dict[str, Any]]:
    url = f"{sim.control}/api/meters/{sim.meter.serial}/journal"
    with urllib.request.urlopen(url, timeout=10) as response:
        entries: list[dict[str, Any]] = json.loads(response.read())["entries"]
    return entries


def public_key(sim: Sim) -> str:
    status, body = meter_get(sim, "v1/ocmf/publickey")
    assert status == 200
    key: str = json.loads(body)["PK"]
    return key


def only_response(lines: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def sim(sim_factory: SimFactory) -> Sim:
    return sim_factory("--seed", "driver-cli")


def test_monitor_prints_one_json_line_per_event_and_publication(sim: Sim) -> None:
    code, lines, stderr = run_cli(sim, "monitor", "--count", "2")
    berlin_offset = datetime.now(ZoneInfo("Europe/Berlin")).strftime("%z")
    assert code == 0, stderr
    names = [line["event"] for line in lines]
    assert names.count("powermeter") == 2 and names[-1] == "powermeter"
    assert names.index("public_key_ocmf") < names.index("initialised")
    assert all(set(line) >= {"event", "time", "data"} for line in lines)
    key_line = lines[names.index("public_key_ocmf")]
    assert key_line["data"] == public_key(sim)
    for line in lines:
        if line["event"] != "powermeter":
            continue
        data = line["data"]
        assert set(data) == POWERMETER_KEYS
        assert data["meter_id"] == sim.meter.serial
        assert data["energy_Wh_import"] == {"total": 0.0} and data["energy_Wh_export"] == {"total": 0.0}
        assert data["current_A"] == {"DC": 0.0} and data["voltage_V"] == {"DC": 0.0}
        assert data["power_W"] == {"total": 0.0}
        # the default +0100 with DST follows the EU rule, as Europe/Berlin does (fix 12); no status letter
        assert data["timestamp"].endswith(berlin_offset) and " " not in data["timestamp"]


def test_start_then_stop_gives_the_meters_record(sim: Sim) -> None:
    code, lines, stderr = run_cli(sim, *start_args("t-1", "--id-data", RFID))
    assert code == 0, stderr
    assert only_response(lines) == {"status": "OK", "error": ""}
    code, lines, stderr = run_cli(sim, "stop", "--transaction-id", "t-1")
    assert code == 0, stderr
    response = only_response(lines)
    assert response["status"] == "OK" and response["error"] == ""  # fix 18: EVerest's shape
    smv = response["signed_meter_value"]
    assert set(smv) == {"signed_meter_data", "signing_method", "encoding_method", "public_key"}
    assert (smv["signing_method"], smv["encoding_method"]) == ("", "OCMF")
    assert smv["public_key"] == public_key(sim)
    status, stored = meter_get(sim, "v1/ocmf/transaction")
    assert status == 200 and smv["signed_meter_data"].encode() == stored  # byte for byte
    parsed = OCMF.from_string(smv["signed_meter_data"], strict=True)
    assert parsed.verify_signature(smv["public_key"]) is True
    assert parsed.check_eichrecht(errors_only=True) == []
    payload = json.loads(smv["signed_meter_data"].split("|")[1])
    assert (payload["CT"], payload["CI"], payload["ID"], payload["IT"]) == ("EVSEID", CI, RFID, "ISO14443")
    # each CLI call is a new driver: the stop's init found its CT and CI on the meter and, with the transaction
    # running, wrote neither gw nor the time (fix 17)
    posts = [e["path"].rsplit("/", 1)[1] for e in journal(sim) if e["method"] == "POST"]
    assert posts == ["gw", "receipt", "user", "receipt", "receipt"]


def test_start_with_evse_id_not_ci_exits_1(sim: Sim) -> None:
    code, lines, _ = run_cli(sim, "start", "--transaction-id", "t-1", "--evse-id", "DE*XYZ*E9999")
    assert code == 1
    response = only_response(lines)
    assert response["status"] == "NOT_SUPPORTED" and "CI does not match evse_id" in response["error"]
    assert not [e for e in journal(sim) if e["path"].endswith("/receipt") or e["path"].endswith("/user")]


def test_stop_when_there_never_was_a_transaction_exits_1(sim: Sim) -> None:
    code, lines, _ = run_cli(sim, "stop")
    assert code == 1
    response = only_response(lines)
    assert response["status"] == "UNEXPECTED_ERROR"
    assert response["error"].endswith("Maybe no transaction to return?")
    assert "signed_meter_value" not in response


def test_start_against_a_powered_off_meter_exits_1(sim: Sim) -> None:
    request = urllib.request.Request(
        f"{sim.control}/api/meters/{sim.meter.serial}/power",
        data=json.dumps({"on": False}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read()) == {"powered": False}
    code, lines, _ = run_cli(sim, "--timeout-s", "2", *start_args())
    assert code == 1
    response = only_response(lines)
    assert response["status"] == "UNEXPECTED_ERROR" and response["error"].startswith("meter not ready:")


def test_stop_falls_back_from_v1_to_v2(sim_factory: SimFactory) -> None:
    sim = sim_factory("--seed", "driver-cli", "--set", "v1_transaction=false")
    assert run_cli(sim, *start_args("t-1", "--id-data", RFID))[0] == 0
    code, lines, _ = run_cli(sim, "stop")
    assert code == 0
    first = only_response(lines)["signed_meter_value"]["signed_meter_data"]
    seen = len(journal(sim))
    code, lines, stderr = run_cli(sim, "stop")  # nothing running: the last record, from v2
    assert code == 0, stderr
    response = only_response(lines)
    assert response["status"] == "OK" and response["signed_meter_value"]["signed_meter_data"] == first
    records = [(e["path"], e["status"]) for e in journal(sim)[seen:] if e["path"].endswith("/transaction")]
    assert records == [("/counter/v1/ocmf/transaction", 404), ("/counter/v2/ocmf/transaction", 200)]
    assert meter_get(sim, "v2/ocmf/transaction") == (200, first.encode())
