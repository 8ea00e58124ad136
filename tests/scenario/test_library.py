"""Every scenario file in scenarios/ is one test: it runs against a fresh twin and must pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulator.scenario import discover, load_file, run_scenario
from simulator.scenario.report import text

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = discover([LIBRARY])


def test_library_has_a_scenario_per_behaviour() -> None:
    assert len(FILES) >= 25, f"only {len(FILES)} scenario files in {LIBRARY}"


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_scenario(path: Path) -> None:
    scenario = load_file(path)
    result = asyncio.run(run_scenario(scenario))
    assert result.passed, "\n" + text(result)
