"""Scenario library wall time: ``iemdcr-sim scenario run scenarios/`` when the runner exists."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from .common import REPO, sim_command


def run() -> dict[str, Any]:
    probe = subprocess.run([*sim_command(), "scenario", "--help"], capture_output=True, text=True, cwd=REPO)
    if probe.returncode != 0:
        return {"scenario_suite_s": None, "scenario_suite_method": "not measured: iemdcr-sim has no scenario command"}
    if not (REPO / "scenarios").is_dir():
        return {"scenario_suite_s": None, "scenario_suite_method": "not measured: no scenarios/ folder"}
    started = time.perf_counter()
    done = subprocess.run([*sim_command(), "scenario", "run", "scenarios/"], capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    return {
        "scenario_suite_s": round(wall, 2),
        "scenario_suite_exit": done.returncode,
        "scenario_suite_method": "wall time of iemdcr-sim scenario run scenarios/ (exit code reported beside it)",
    }
