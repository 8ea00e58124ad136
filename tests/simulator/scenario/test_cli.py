"""``iemdcr-sim scenario run``: exit codes, selection, reports."""

from __future__ import annotations

import argparse
import errno
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from iemdcr_twin.simulator.scenario import cli

PASSING = """version: 1
name: the driver initialises
steps:
  - wait_for: {event: initialised, timeout: 1s}
"""
FAILING = """version: 1
name: a stop with nothing to stop is not OK
steps:
  - wait_for: {event: initialised, timeout: 1s}
  - advance: 90s
  - stop: {}
    expect: {status: OK}
"""


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="iemdcr-sim")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["scenario", "run", *argv])


@pytest.fixture
def library(tmp_path: Path) -> Path:
    (tmp_path / "passing.yaml").write_text(PASSING, encoding="utf-8")
    (tmp_path / "failing.yaml").write_text(FAILING, encoding="utf-8")
    return tmp_path


def test_exit_0_when_all_pass(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse(str(library / "passing.yaml"))) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS  passing ")
    assert "1 passed, 0 failed" in out


def test_exit_1_with_a_failure_story(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse(str(library))) == 1
    out = capsys.readouterr().out
    assert "FAIL  failing " in out
    assert "at step 2 (stop)" in out
    assert "expected: " in out
    assert "got:      " in out and "Maybe no transaction to return?" in out
    assert "last requests on the wire:" in out
    assert "1 passed, 1 failed" in out


def test_exit_2_before_running_when_a_file_is_broken(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (library / "broken.yaml").write_text(PASSING.replace("timeout: 1s", "timeout: 1s, colour: red"), encoding="utf-8")
    assert cli.run(parse(str(library))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "broken.yaml: step 0 (wait_for): unknown key colour" in captured.err
    assert "nothing was run" in captured.err


def test_a_file_that_is_not_utf8_exits_2_before_running(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (library / "latin1.yaml").write_bytes(b"version: 1\nname: caf\xe9\nsteps: [{advance: 1s}]\n")
    assert cli.run(parse(str(library))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{library / 'latin1.yaml'}: not valid YAML: 'utf-8' codec can't decode byte 0xe9" in captured.err
    assert "Traceback" not in captured.err and "nothing was run" in captured.err


def test_k_selects_by_stem_or_name(library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(parse(str(library), "-k", "initialises")) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
    assert cli.run(parse(str(library), "-k", "nothing-matches-this")) == 2


def test_junit_and_json_reports(library: Path, tmp_path: Path) -> None:
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    assert cli.run(parse(str(library), "--junit", str(junit), "--json", str(report))) == 1
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failures = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failures == ["failing"]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["passed"], data["failed"]) == (1, 1)
    verdicts = {Path(s["path"]).stem: s["verdict"] for s in data["scenarios"]}
    assert verdicts == {"failing": "FAIL", "passing": "PASS"}
    failing = next(s for s in data["scenarios"] if s["verdict"] == "FAIL")
    assert failing["failure"]["step"] == "step 2 (stop)"
    assert failing["sim_seconds"] == 90.0  # seconds of the scenario's virtual clock (SimClock)
    assert failing["failure"]["requests"]


@pytest.mark.parametrize(
    ("option", "where", "words"),
    [
        ("--junit", "missing/report.xml", "the folder {tmp}/missing does not exist"),
        ("--json", "missing/report.json", "the folder {tmp}/missing does not exist"),
        ("--junit", "", "is a folder; name a file in it"),
        ("--json", "passing.yaml/report.json", "the folder {tmp}/passing.yaml does not exist (it is a file)"),
    ],
)
def test_a_report_path_that_cannot_be_written_exits_2_before_anything_runs(
    library: Path, option: str, where: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = library / where if where else library
    assert cli.run(parse(str(library / "passing.yaml"), option, str(target))) == 2
    captured = capsys.readouterr()
    assert captured.err == f"iemdcr-sim: {option} {target}: {words.format(tmp=library)}; nothing was run\n"
    assert captured.out == ""  # no scenario ran


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a file whose writes fail: ENOSPC)")
def test_a_report_that_fails_to_be_written_after_the_run_exits_2_naming_option_and_path(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.json"
    assert cli.run(parse(str(library / "passing.yaml"), "--junit", "/dev/full", "--json", str(report))) == 2
    captured = capsys.readouterr()
    assert "1 passed, 0 failed" in captured.out  # the scenarios ran and their results are printed
    assert captured.err == "iemdcr-sim: --junit /dev/full: the report cannot be written (No space left on device)\n"
    assert json.loads(report.read_text(encoding="utf-8"))["scenarios"]  # the other report is still written


def test_a_report_write_error_is_caught_for_json_too(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    target = tmp_path / "out.json"
    assert cli.run(parse(str(library / "passing.yaml"), "--json", str(target))) == 2
    assert capsys.readouterr().err == f"iemdcr-sim: --json {target}: the report cannot be written (Permission denied)\n"


@pytest.mark.parametrize(("junit", "json_path"), [("same.xml", "same.xml"), ("same.xml", "./sub/../same.xml")])
def test_junit_and_json_naming_one_file_is_refused_before_running(
    library: Path,
    tmp_path: Path,
    junit: str,
    json_path: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli.run(parse(str(library / "passing.yaml"), "--junit", junit, "--json", json_path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"iemdcr-sim: --json {Path(json_path)} and --junit {Path(junit)} name the same file; give each report its "
        "own; nothing was run\n"
    )


@pytest.mark.parametrize("option", ["--junit", "--json"])
def test_an_empty_report_path_is_refused_naming_the_option(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(option, "")
    assert exc.value.code == 2
    assert f"argument {option}: the path is empty; name the file to write" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5"])
def test_jobs_must_be_a_positive_integer(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("-j", value)
    assert exc.value.code == 2
    assert f"argument -j/--jobs: must be a positive integer (1 or more), not {value!r}" in capsys.readouterr().err


def test_jobs_takes_one_or_more() -> None:
    assert parse("-j", "1").jobs == 1 and parse("--jobs", "16").jobs == 16
