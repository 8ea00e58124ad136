"""What ``pip install`` makes: one import root, ``iemdcr_twin``, that installs beside anything.

A real wheel is built from the repository and installed into a folder of its own; a throwaway project with its
own ``driver/`` and ``simulator/`` packages then imports both theirs and ours and runs a scenario end to end.
The console scripts and ``--version`` come from the same single version.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import iemdcr_twin

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SCENARIO = REPO / "scenarios" / "start-stop-happy-path-record-verifies.yaml"
LIMIT_S = 300  # a guard against a hang, never a measure of speed

THROWAWAY_MAIN = """
import asyncio, json, sys
from pathlib import Path

import driver, simulator  # the project's own packages, with names PyPI and many projects use
import iemdcr_twin
from iemdcr_twin.driver.types import TransactionRequestStatus
from iemdcr_twin.simulator.scenario import load_file, run_scenario

result = asyncio.run(run_scenario(load_file(Path(sys.argv[1]))))
print(json.dumps({
    "theirs": [driver.WHOSE, simulator.WHOSE],
    "ours": iemdcr_twin.__file__,
    "version": iemdcr_twin.__version__,
    "ok": TransactionRequestStatus.OK.value,
    "scenario": result.as_dict(),
}))
"""


def source_copy(dest: Path) -> Path:
    """The repository's files as git lists them (tracked, and new ones it does not ignore), copied to ``dest``.

    Building from a copy keeps setuptools' ``build/`` folder out of the repository, where a stale copy of a
    moved or deleted module could slip into the next wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        timeout=LIMIT_S,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from the repository as it stands (no index needed: the venv's setuptools builds it)."""
    out = tmp_path_factory.mktemp("wheel")
    source = source_copy(tmp_path_factory.mktemp("source"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("iemdcr_twin-*.whl")
    return built


@pytest.mark.e2e  # builds the wheel with pip
def test_the_wheel_installs_one_import_root_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    roots = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert roots == {"iemdcr_twin"}, "nothing but iemdcr_twin may land at the top of site-packages"
    for needed in (
        "iemdcr_twin/__init__.py",
        "iemdcr_twin/py.typed",
        "iemdcr_twin/simulator/py.typed",
        "iemdcr_twin/driver/py.typed",
        "iemdcr_twin/simulator/static/index.html",
        "iemdcr_twin/simulator/meter-api.openapi.json",
        "iemdcr_twin/simulator/scenario/schema.json",
    ):
        assert needed in names, needed
    assert f"iemdcr_twin-{iemdcr_twin.__version__}.dist-info/METADATA" in names


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """The package-dir mapping lists packages by hand: a new sub-package must not be left out of the wheel."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {"iemdcr_twin"}
    for folder, root in (("simulator", "iemdcr_twin.simulator"), ("driver", "iemdcr_twin.driver")):
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            on_disk.add(".".join([root, *parts]))
    assert listed == on_disk


@pytest.mark.e2e  # installs the wheel into a new venv and runs a scenario there
def test_a_project_with_its_own_driver_and_simulator_imports_ours_and_runs_a_scenario(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    project = tmp_path / "project"
    for package in ("driver", "simulator"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"WHOSE = 'theirs: {package}'\n")
    (project / "main.py").write_text(THROWAWAY_MAIN)
    # The wheel's folder comes first on the path, so ``iemdcr_twin`` is the installed copy, not the repository's.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "main.py", str(SCENARIO)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["theirs"] == ["theirs: driver", "theirs: simulator"]
    assert Path(report["ours"]).is_relative_to(site)
    assert report["version"] == iemdcr_twin.__version__
    assert report["scenario"]["verdict"] == "PASS", report["scenario"]["failure"]


@pytest.mark.e2e  # runs the installed console scripts
@pytest.mark.parametrize("script", ["iemdcr-sim", "iemdcr-driver"])
def test_console_scripts_show_the_one_version(script: str) -> None:
    path = Path(sys.executable).with_name(script)
    assert path.exists(), f"{path} is not installed"
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=LIMIT_S, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{script} {iemdcr_twin.__version__}"


def readme_commands() -> list[str]:
    """The shell blocks of the README's "The two commands" section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n", 1)[1].strip() for block in section.split("```sh")[1:]]


def test_the_two_readme_commands_use_separate_venvs_and_ci_runs_the_test_command_exactly() -> None:
    serve, test = (command.split("```", 1)[0].strip() for command in readme_commands())
    serve_venv = serve.split("python3 -m venv ", 1)[1].split()[0]
    test_venv = test.split("python3 -m venv ", 1)[1].split()[0]
    assert serve_venv != test_venv, "running the tests must not replace the package under a serving twin"
    assert "pip install . " in serve + " " and "iemdcr-sim serve" in serve
    assert "-m pytest" in test
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test in ci, ".ci/run must run the README's test command exactly"


@pytest.mark.e2e  # starts Python from the repository root
def test_a_source_checkout_imports_its_own_driver_and_simulator_without_an_install() -> None:
    """Run from the repository root, the checkout's ``iemdcr_twin/`` comes first on sys.path (the current folder);
    ``-S`` leaves out site-packages (and so any editable finder), yet both subpackages resolve to the checkout."""
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import importlib.util as u; print(u.find_spec('iemdcr_twin.driver').origin); "
            "print(u.find_spec('iemdcr_twin.simulator').origin)",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [Path(line).resolve() for line in done.stdout.splitlines()] == [
        REPO / "driver" / "__init__.py",
        REPO / "simulator" / "__init__.py",
    ]
