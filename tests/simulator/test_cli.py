"""``iemdcr-sim serve`` flags, parsed in-process (tests/e2e starts the real process)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import iemdcr_twin
from iemdcr_twin.simulator import cli


def serve_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["serve", *argv])


def test_defaults_follow_the_spec() -> None:
    args = serve_args()
    assert (args.host, args.port, args.meters, cli.control_port(args)) == ("127.0.0.1", 8080, 1, 8090)
    assert (args.clock, args.log_format, args.journal_size, args.profile) == ("real", "text", 10_000, "iem-dcr-125")
    assert args.state_dir is None and args.seed is None and args.epoch is None and args.switches == []


@pytest.mark.parametrize(
    ("argv", "port"),
    [([], 8090), (["--port", "0"], 0), (["--port", "0", "--control-port", "9000"], 9000), (["--port", "8081"], 8090)],
)
def test_port_0_also_picks_a_free_control_port_unless_one_is_given(argv: list[str], port: int) -> None:
    assert cli.control_port(serve_args(*argv)) == port


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "-1"], "--port"),
        (["--port", "http"], "--port"),
        (["--control-port", "65536"], "--control-port"),
        (["--meters", "0"], "--meters"),
        (["--journal-size", "x"], "--journal-size"),
        (["--clock", "fast"], "--clock"),
        (["--profile", "iem-dcr-9"], "--profile"),
        (["--epoch", "yesterday"], "--epoch"),
        (["--epoch", "2025-06-06T09:00:00"], "--epoch"),
        (["--epoch", "1e12"], "--epoch"),
        (["--epoch", "9999-12-31T23:59:00Z"], "--epoch"),
        (["--epoch", "0001-06-01T00:00:00+00:00"], "--epoch"),
        (["--state-dir", ""], "--state-dir"),
        (["--log-format", "xml"], "--log-format"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", *argv])
    assert exc.value.code == 2
    assert named in capsys.readouterr().err


@pytest.fixture
def refused_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cli.main(["serve", ...])`` must stop at the flags: reaching ``serve`` fails the test instead of serving."""

    async def must_not_serve(args: argparse.Namespace) -> None:
        raise AssertionError(f"serve started with {args}")

    monkeypatch.setattr(cli, "serve", must_not_serve)
    monkeypatch.setattr(cli, "configure_logging", lambda fmt: None)


@pytest.mark.usefixtures("refused_before_serving")
@pytest.mark.parametrize(
    ("argv", "last"),
    [(["--port", "65535", "--meters", "3"], "65537"), (["--port", "65000", "--meters", "1000"], "65999")],
)
def test_meters_whose_ports_would_pass_65535_are_refused_naming_port_meters_and_the_last_port(
    argv: list[str], last: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--port {argv[1]} with --meters {argv[3]} needs ports {argv[1]}..{last}" in err
    assert "the last port is 65535" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["--port", "65535"], ["--port", "65533", "--meters", "3"], ["--port", "0", "--meters", "3000"]]
)
def test_meters_up_to_port_65535_are_accepted(argv: list[str]) -> None:
    assert cli.serve_args_problem(serve_args(*argv)) is None


@pytest.mark.usefixtures("refused_before_serving")
@pytest.mark.parametrize("meters", ["1", "2"])
def test_fleet_with_meters_is_refused_naming_both(
    meters: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("- {port: 0}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--fleet", str(fleet), "--meters", meters])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --meters: not allowed with --fleet" in err


def exit_status(argv: list[str]) -> int | str | None:
    """``cli.main(argv)``'s status, whether it returns it or exits with it."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 another socket listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def quiet_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cli.main`` would replace pytest's log handlers."""
    monkeypatch.setattr(cli, "configure_logging", lambda fmt: None)


@pytest.mark.usefixtures("quiet_logging")
def test_a_meter_port_in_use_exits_2_naming_host_and_port(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(["serve", "--port", str(busy_port), "--control-port", "0"]) == 2
    assert capsys.readouterr().err == (
        f"iemdcr-sim: cannot listen on host 127.0.0.1 port {busy_port} (meter 1ISA0200000001): Address already in use\n"
    )


@pytest.mark.usefixtures("quiet_logging")
def test_the_second_meters_port_in_use_exits_2_and_releases_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    with _busy_port_above_a_free_one() as busy_port:
        _second_meters_port_in_use(busy_port, capsys)


@contextlib.contextmanager
def _busy_port_above_a_free_one() -> Iterator[int]:
    """A port another socket listens on, whose port below was free a moment ago (tried up to 50 times)."""
    for _ in range(50):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            port = other.getsockname()[1]
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port - 1))
                except OSError:
                    continue
            yield port
            return
    pytest.skip("no free port right below a busy one in 50 tries")


def _second_meters_port_in_use(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    first = busy_port - 1
    assert exit_status(["serve", "--port", str(first), "--meters", "2", "--control-port", "0"]) == 2
    err = capsys.readouterr().err
    if "meter 1ISA0200000001" in err:  # the port below was taken too: nothing to learn about the release
        pytest.skip(f"port {first} was taken by another process meanwhile")
    assert err == (
        f"iemdcr-sim: cannot listen on host 127.0.0.1 port {busy_port} (meter 1ISA0200000002): Address already in use\n"
    )
    with socket.socket() as again:  # the first meter's reservation is gone
        again.bind(("127.0.0.1", first))


@pytest.mark.usefixtures("quiet_logging")
def test_a_control_port_in_use_exits_2_naming_host_and_port(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(["serve", "--port", "0", "--control-port", str(busy_port)]) == 2
    assert capsys.readouterr().err == (
        f"iemdcr-sim: cannot listen on host 127.0.0.1 port {busy_port} (control API): Address already in use\n"
    )


@pytest.mark.usefixtures("quiet_logging")
def test_a_host_that_is_no_address_of_this_machine_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(["serve", "--port", "0", "--host", "192.0.2.1"]) == 2  # TEST-NET-1: never assigned
    assert capsys.readouterr().err == (
        "iemdcr-sim: cannot listen on host 192.0.2.1 port 0 (meter 1ISA0200000001): Cannot assign requested address\n"
    )


@pytest.mark.usefixtures("quiet_logging")
def test_a_host_that_does_not_resolve_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(["serve", "--port", "0", "--host", "no-such-host.invalid"]) == 2  # .invalid: RFC 6761
    err = capsys.readouterr().err
    assert err.startswith("iemdcr-sim: --host no-such-host.invalid: cannot be resolved to an address to listen on (")
    assert err.count("\n") == 1


@pytest.mark.usefixtures("quiet_logging")
def test_a_state_dir_that_cannot_be_created_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    folder = tmp_path / "file" / "state"
    assert exit_status(["serve", "--port", "0", "--state-dir", str(folder)]) == 2
    assert capsys.readouterr().err == f"iemdcr-sim: --state-dir {folder}: cannot create the folder (Not a directory)\n"


@pytest.mark.usefixtures("quiet_logging")
def test_a_state_dir_that_is_a_file_exits_2_saying_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("", encoding="utf-8")
    assert exit_status(["serve", "--port", "0", "--state-dir", str(afile)]) == 2
    assert capsys.readouterr().err == (
        f"iemdcr-sim: --state-dir {afile}: is a file, not a folder; give a folder (it is created when missing)\n"
    )


def _lock_on_a_read_only_file_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.open`` of a meter's lock file fails as on a read-only mount (the test runs as root, so a chmod would
    not stop it)."""
    real_open = os.open

    def read_only_lock(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("/lock") and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_lock)


@pytest.mark.usefixtures("quiet_logging")
@pytest.mark.parametrize("case", ["serial_folder_is_a_file", "lock_is_a_folder", "read_only"])
def test_a_meter_folder_that_cannot_be_written_at_start_up_is_one_line_naming_it_and_what_to_do(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    folder = tmp_path / "1ISA0200000001"
    if case == "serial_folder_is_a_file":
        folder.write_text("", encoding="utf-8")
        named, problem = folder, "is a file, not a folder"
    elif case == "lock_is_a_folder":
        (folder / "lock").mkdir(parents=True)
        named, problem = folder / "lock", "is a folder, not a file"
    else:
        cli.build_twin(serve_args("--port", "0", "--state-dir", str(tmp_path), "--seed", "x")).close_memories()
        _lock_on_a_read_only_file_system(monkeypatch)
        named, problem = folder / "lock", "cannot be written (Read-only file system)"
    caplog.set_level(logging.WARNING, logger="iemdcr.store")
    assert exit_status(["serve", "--port", "0", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"iemdcr-sim: {named}: {problem}; serve writes each meter's folder in --state-dir {tmp_path} when it "
        "starts. Make it writable (or move what is in the way), or give another --state-dir\n"
    )
    assert [r.getMessage() for r in caplog.records if r.name == "iemdcr.store"] == []  # no "retried" promise


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"iemdcr-sim {iemdcr_twin.__version__}"


def test_no_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    assert "command" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("switch", "named"),
    [
        ("nope=1", "unknown switch 'nope'"),
        ("v1_transaction=maybe", "v1_transaction"),
        ("signature_delay_ms=soon", "signature_delay_ms"),
        ("activation_threshold_A=abc", "switch activation_threshold_A must be a number, got 'abc'"),
        ("=1", "unknown switch ''"),
    ],
)
def test_bad_switch_exits_2_naming_set_and_the_key(switch: str, named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_twin(serve_args("--set", "v1_transaction=true", "--set", switch))
    assert exc.value.code == 2  # as every other bad argument (was 1)
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"iemdcr-sim: --set {switch}: ") and named in line


def test_switch_without_equals_sign_exits_2_naming_set(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_twin(serve_args("--set", "foo"))
    assert exc.value.code == 2
    assert capsys.readouterr().err == "iemdcr-sim: --set foo: expected KEY=VALUE (a switch name, =, its value)\n"


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("0", 0.0),
        ("1750000000.5", 1_750_000_000.5),
        ("2025-06-06T09:00:00+00:00", 1_749_200_400.0),
        ("2025-06-06T09:00:00Z", 1_749_200_400.0),
        ("2025-06-06T11:00:00+02:00", 1_749_200_400.0),
    ],
)
def test_parse_epoch(text: str, epoch: float) -> None:
    assert cli.parse_epoch(text) == epoch


@pytest.mark.parametrize("text", ["9998-12-31T23:59:59.999Z", "0001-12-31T23:59:59Z", "1e12", "253370764799.5"])
def test_an_epoch_a_meter_cannot_show_is_named_as_given_with_the_range(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        cli.parse_epoch(text)
    assert str(exc.value) == (
        f"--epoch {text!r} is outside the times a meter can show (0002-01-01T00:00:00Z to 9998-12-31T23:59:59Z, "
        "-62104060800 to 253370764799 seconds since 1970)"
    )


def test_build_twin_with_meters_ports_profile_switches_and_clock(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    args = serve_args(
        "--port",
        "18100",
        "--meters",
        "3",
        "--profile",
        "iem-dcr-1000",
        "--set",
        "v1_transaction=off",
        "--set",
        "activation_threshold_A=2.5",
        "--clock",
        "virtual",
        "--epoch",
        "2025-06-06T09:00:00Z",
        "--state-dir",
        str(state),
        "--journal-size",
        "7",
        "--host",
        "127.0.0.2",
    )
    twin = cli.build_twin(args)
    assert state.is_dir()
    assert list(twin.slots) == ["1ISA0210000001", "1ISA0210000002", "1ISA0210000003"]
    assert [slot.port for slot in twin.slots.values()] == [18100, 18101, 18102]
    assert twin.slot("1ISA0210000001").url == "http://127.0.0.2:18100"
    meter = twin.slot("1ISA0210000001").meter
    assert meter.profile.rated_current_A == 1000
    assert meter.switches.v1_transaction is False and meter.switches.activation_threshold_A == 2.5
    assert twin.clock.mode == "virtual" and twin.clock.now() == pytest.approx(1_749_200_400.0, abs=1)
    assert twin.journal_size == 7 and twin.state_dir == state
    keys = {slot.meter.signer.public_key_hex for slot in twin.slots.values()}
    assert len(keys) == 3


def test_a_state_dir_meter_of_another_profile_exits_2_naming_the_file_and_both_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--profile`` with ``--meters``: the folder of the profile's serial holds an iem-dcr-125 (a folder copied
    under another serial); its key and records must not turn into an iem-dcr-1500's."""
    serial = "1ISA0215000001"  # the iem-dcr-1500's first serial
    built = cli.build_twin(serve_args("--port", "0", "--state-dir", str(tmp_path), "--seed", "x"))
    built.close_memories()
    (tmp_path / "1ISA0200000001").rename(tmp_path / serial)
    with pytest.raises(SystemExit) as exc:
        cli.build_twin(serve_args("--port", "0", "--state-dir", str(tmp_path), "--profile", "iem-dcr-1500"))
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith(
        f"iemdcr-sim: {tmp_path / serial / 'state.json'}: holds a meter of profile iem-dcr-125, not iem-dcr-1500 "
        "as asked"
    )


def test_port_zero_gives_every_meter_a_free_port() -> None:
    twin = cli.build_twin(serve_args("--port", "0", "--meters", "2", "--seed", "x"))
    assert [slot.port for slot in twin.slots.values()] == [0, 0]
    assert twin.seed == "x"


def test_announce_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    fields = {"serial": "1ISA0200000001", "url": "http://127.0.0.1:8080"}
    cli.announce("meter", fields, "text")
    cli.announce("meter", fields, "json")
    text_line, json_line = capsys.readouterr().out.splitlines()
    assert text_line == "meter serial=1ISA0200000001 url=http://127.0.0.1:8080"
    assert json.loads(json_line) == {"event": "meter", **fields}


def test_allow_host_and_allow_origin_repeat() -> None:
    args = serve_args("--allow-host", "twin", "--allow-host", "Lab.Example:8090", "--allow-origin", "HTTPS://lab/")
    assert (args.allow_host, args.allow_origin) == (["twin", "lab.example"], ["https://lab"])
    assert serve_args("--allow-host", "*").allow_host == ["*"]
    assert serve_args().allow_host == [] and serve_args().allow_origin == []


@pytest.mark.parametrize(("flag", "value"), [("--allow-host", "a/b"), ("--allow-origin", "lab.example")])
def test_bad_allow_values_exit_2_naming_the_flag(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        serve_args(flag, value)
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err


def test_the_compose_lab_and_the_image_commands_parse_and_the_lab_allows_its_service_name() -> None:
    """compose.yaml: drivers and tools in other containers reach the twin by its service name, ``twin``."""
    repo = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((repo / "compose.yaml").read_text(encoding="utf-8"))["services"]
    command = services["twin"]["command"]
    assert command[:2] == ["iemdcr-sim", "serve"]
    args = cli.build_parser().parse_args(command[1:])
    assert "twin" in args.allow_host and args.host == "0.0.0.0"
    dockerfile = (repo / "Dockerfile").read_text(encoding="utf-8")
    image_command = json.loads(dockerfile.rsplit("\nCMD ", 1)[1].replace("\\\n", ""))
    assert cli.build_parser().parse_args(image_command[1:]).host == "0.0.0.0"


def test_every_docker_run_shown_publishes_on_loopback_only() -> None:
    """The image serves the control API without a token: a command that publishes on every interface (``-p
    8090:8090``) would open it to the network, so each one shown binds 127.0.0.1 (docs/docker.md)."""
    repo = Path(__file__).resolve().parents[2]
    shown = [repo / "Dockerfile", repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    published = []
    for path in shown:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "docker run" in line:
                published += [(path.name, spec) for spec in re.findall(r"(?:-p|--publish)[ =](\S+)", line)]
    assert ("Dockerfile", "127.0.0.1:8090:8090") in published
    assert [(name, spec) for name, spec in published if not spec.startswith("127.0.0.1:")] == []


@pytest.mark.e2e  # starts a fresh interpreter: only there is the import graph of ``serve`` visible
def test_serve_imports_neither_the_scenario_runner_nor_the_driver_nor_pyocmf() -> None:
    """``serve`` registers the ``scenario`` flags only; the runner, the driver and pyocmf (about 0.2 s of imports)
    load when a scenario runs, so the twin is ready sooner."""
    heavy = ("pyocmf", "iemdcr_twin.driver", "iemdcr_twin.simulator.scenario.runner")
    code = f"import sys, iemdcr_twin.simulator.cli; print([m for m in sys.modules if m.startswith({heavy!r})])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_scenario_package_still_offers_every_name() -> None:
    import iemdcr_twin.simulator.scenario as scenario

    for name in scenario.__all__:
        assert getattr(scenario, name) is not None, name
    with pytest.raises(AttributeError, match="nope"):
        scenario.nope  # noqa: B018
