"""Fleet files for ``serve --fleet``: meters with their own port, serial, profile and switches; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from iemdcr_twin.simulator.cli import build_parser, build_twin
from iemdcr_twin.simulator.fleet_file import FleetFileError, load_fleet

FLEET = """
meters:
  - port: 0
    serial: "1ISA0210000007"
    profile: iem-dcr-1000
    switches: {v1_transaction: false, signature_delay_ms: 200}
  - port: 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_fleet_file_builds_its_meters(tmp_path: Path) -> None:
    path = write(tmp_path, FLEET)
    args = build_parser().parse_args(["serve", "--fleet", str(path), "--set", "response_latency_ms=5"])
    twin = build_twin(args)
    first, second = twin.slots.values()
    assert first.meter.serial == "1ISA0210000007"
    assert first.meter.profile.name == "iem-dcr-1000"
    assert first.meter.switches.v1_transaction is False
    assert first.meter.switches.signature_delay_ms == 200
    assert first.meter.switches.response_latency_ms == 5  # --set is the default for every meter
    assert second.meter.profile.name == "iem-dcr-125"
    assert second.meter.serial == "1ISA0200000002"  # the profile's serial plus the meter's index


def test_a_plain_list_works_too(tmp_path: Path) -> None:
    specs = load_fleet(write(tmp_path, "- {port: 9001}\n- {port: 9002, serial: '1ISA0200000050'}\n"), "iem-dcr-125")
    assert [(s.port, s.serial) for s in specs] == [(9001, None), (9002, "1ISA0200000050")]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("meters: [", ["not valid YAML"]),
        ("meters: []", ["meters: must be a non-empty list"]),
        ("fleet: []", ["unknown key 'fleet'"]),
        ("- 8080", ["meters[0]", "mapping"]),
        ("- {serial: '1ISA0200000001'}", ["meters[0].port"]),
        ("- {port: 70000}", ["meters[0].port"]),
        ("- {port: '80'}", ["meters[0].port"]),
        ("- {port: 1, colour: red}", ["meters[0]", "unknown key 'colour'"]),
        ("- {port: 1}\n- {port: 2, profile: iem-dcr-9}", ["meters[1].profile", "iem-dcr-9"]),
        ("- {port: 1, serial: 1234}", ["meters[0].serial", "quote"]),
        ("- {port: 1, serial: 'XYZ'}", ["meters[0].serial", "1ISA"]),
        ("- {port: 1, switches: [a]}", ["meters[0].switches", "mapping"]),
        ("- {port: 1, switches: {warp: 9}}", ["meters[0].switches", "warp"]),
        ("- {port: 1, switches: {v1_transaction: 3}}", ["meters[0].switches", "v1_transaction"]),
        ("- {port: 5}\n- {port: 5}", ["meters[1].port", "meters[0]"]),
        ("- {port: 0, serial: '1ISA0200000001'}\n- {port: 0, serial: '1ISA0200000001'}", ["meters[1].serial"]),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path, "iem-dcr-125")
    message = str(caught.value)
    assert message.startswith(str(path))
    for word in words:
        assert word in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="cannot read"):
        load_fleet(tmp_path / "nope.yaml", "iem-dcr-125")


def test_serve_exits_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "- {port: 1, profile: nope}")
    args = build_parser().parse_args(["serve", "--fleet", str(path)])
    with pytest.raises(SystemExit) as caught:
        build_twin(args)
    assert caught.value.code == 2
    assert "meters[0].profile" in capsys.readouterr().err


def test_a_named_serial_that_collides_with_a_generated_one_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "- {port: 0}\n- {port: 0, serial: '1ISA0200000001'}")
    with pytest.raises(SystemExit) as caught:
        build_twin(build_parser().parse_args(["serve", "--fleet", str(path)]))
    assert caught.value.code == 2


def test_a_key_written_twice_is_refused_naming_the_file_the_line_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "- port: 9001\n  serial: '1ISA0200000050'\n  port: 9002\n")
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path, "iem-dcr-125")
    assert str(caught.value) == (
        f"{path}: line 3, column 3: not valid YAML (key 'port' appears twice (first on line 1); write it once)"
    )


def test_a_port_written_with_an_exponent_is_a_number(tmp_path: Path) -> None:
    [spec] = load_fleet(write(tmp_path, "- {port: 9e3}\n"), "iem-dcr-125")
    assert spec.port == 9000 and isinstance(spec.port, int)
