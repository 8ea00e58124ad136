"""``iemdcr-sim conformance report|verify`` against a control app on a real port (the CLI runs in a thread)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from iemdcr_twin.simulator.cli import main
from iemdcr_twin.simulator.conformance.signing import KEY_FILE, PUBLIC_FILE, sign_report
from tests.support.lab import SERIAL, Lab


def control_url(lab: Lab) -> str:
    return str(lab.control.make_url("")).rstrip("/")


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_report_then_verify(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await lab.init()
    await lab.post("gw", lab.gw_body())
    out = tmp_path / "report.json"
    state = tmp_path / "state"
    url = control_url(lab)
    assert await run_cli("conformance", "report", "--url", url, "--serial", SERIAL, "--out", str(out),
                         "--state-dir", str(state)) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "Overall verdict: FAIL" in printed and str(out) in printed
    document: dict[str, Any] = json.loads(out.read_text())
    assert document["report"]["meter"]["serial"] == SERIAL
    fingerprint = document["signature"]["fingerprint"]

    assert await run_cli("conformance", "verify", str(out)) == 0
    assert fingerprint in capsys.readouterr().out
    pub = state / PUBLIC_FILE
    assert await run_cli("conformance", "verify", str(out), "--key", str(pub)) == 0
    assert await run_cli("conformance", "verify", str(out), "--key", fingerprint) == 0
    capsys.readouterr()

    other = SigningKey.generate().verify_key.encode().hex()
    assert await run_cli("conformance", "verify", str(out), "--key", other) == 1
    assert "not by the expected signer" in capsys.readouterr().err

    document["report"]["verdict"] = "PASS"
    out.write_text(json.dumps(document))
    assert await run_cli("conformance", "verify", str(out)) == 1
    err = capsys.readouterr().err
    assert str(out) in err and "INVALID" in err


async def test_report_reuses_a_given_key_file(lab: Lab, tmp_path: Path) -> None:
    key = SigningKey.generate()
    key_file = tmp_path / KEY_FILE
    key_file.write_text(key.encode().hex() + "\n")
    out = tmp_path / "r.json"
    url = control_url(lab)
    assert await run_cli("conformance", "report", "--url", url, "--serial", SERIAL, "--out", str(out),
                         "--key", str(key_file)) == 0  # fmt: skip
    assert json.loads(out.read_text())["signature"]["public_key"] == key.verify_key.encode().hex()


async def test_errors_name_the_file_or_url(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert await run_cli("conformance", "verify", str(missing)) == 1
    assert str(missing) in capsys.readouterr().err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert await run_cli("conformance", "verify", str(garbage)) == 1
    assert "garbage.json is not JSON" in capsys.readouterr().err
    url = control_url(lab)
    key = str(tmp_path / "k")
    assert await run_cli("conformance", "report", "--url", url, "--serial", "1ISA0000000099", "--key", key) == 1
    assert "404" in capsys.readouterr().err
    assert await run_cli("conformance", "report", "--url", "http://127.0.0.1:9", "--serial", SERIAL,
                         "--key", key) == 1  # fmt: skip
    assert "cannot reach" in capsys.readouterr().err


def test_verify_refuses_a_key_given_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = SigningKey.generate()
    report = {"format": "iemdcr-conformance/1", "verdict": "PASS", "meter": {"serial": SERIAL}}
    out = tmp_path / "r.json"
    out.write_text(json.dumps(sign_report(report, key), indent=2))
    fingerprint = json.loads(out.read_text())["signature"]["fingerprint"]
    assert main(["conformance", "verify", str(out), "--key", fingerprint]) == 0
    capsys.readouterr()

    text = out.read_text()
    out.write_text(text.replace('"report": {', '"report": {\n    "verdict": "FAIL",', 1))
    assert main(["conformance", "verify", str(out), "--key", fingerprint]) == 1
    captured = capsys.readouterr()
    assert "signature valid" not in captured.out and "PASS" not in captured.out
    assert f"{out}: INVALID: the key 'verdict' appears twice" in captured.err

    nested = text.replace('"serial": ', '"serial": "OTHER", "serial": ', 1)
    out.write_text(nested)
    assert main(["conformance", "verify", str(out)]) == 1
    assert "the key 'serial' appears twice" in capsys.readouterr().err


def test_verify_refuses_text_beside_the_signed_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = sign_report({"format": "iemdcr-conformance/1", "verdict": "FAIL"}, SigningKey.generate())
    out = tmp_path / "report.json"
    out.write_text(json.dumps({"verdict": "PASS", "note": "all checks passed", **document}))
    assert main(["conformance", "verify", str(out)]) == 1
    captured = capsys.readouterr()
    assert "signature valid" not in captured.out
    assert f"{out}: INVALID: unknown key 'verdict'" in captured.err


async def run_into_a_closed_pipe(*argv: str) -> tuple[int, str]:
    """The CLI in a process whose stdout is a pipe nobody reads any more (``| head -1`` after its line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "iemdcr_twin.simulator", *argv, stdout=write_end, stderr=asyncio.subprocess.PIPE
        )
    finally:
        os.close(write_end)
    _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


@pytest.mark.e2e
async def test_report_into_a_closed_pipe_exits_quietly(lab: Lab, tmp_path: Path) -> None:
    await lab.init()
    out = tmp_path / "report.json"
    key = str(tmp_path / KEY_FILE)
    status, err = await run_into_a_closed_pipe(
        "conformance", "report", "--url", control_url(lab), "--serial", SERIAL, "--out", str(out), "--key", key
    )
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert status == 0
    assert json.loads(out.read_text())["report"]["meter"]["serial"] == SERIAL


def test_verify_into_a_closed_pipe_exits_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.json"
    out.write_text(json.dumps(sign_report({"format": "iemdcr-conformance/1"}, SigningKey.generate())))
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w") as closed:
        monkeypatch.setattr(sys, "stdout", closed)
        assert main(["conformance", "verify", str(out)]) == 0
        closed.flush()  # what the interpreter does at exit: no BrokenPipeError left for it
