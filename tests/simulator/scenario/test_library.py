"""Every scenario file in scenarios/ is one test: it runs against a fresh twin and must pass."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from iemdcr_twin.simulator.scenario import discover, load_file, run_scenario
from iemdcr_twin.simulator.scenario.report import text

LIBRARY = Path(__file__).resolve().parents[3] / "scenarios"
FILES = discover([LIBRARY])


def test_library_has_a_scenario_per_behaviour() -> None:
    assert len(FILES) >= 25, f"only {len(FILES)} scenario files in {LIBRARY}"


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_scenario(path: Path) -> None:
    scenario = load_file(path)
    result = asyncio.run(run_scenario(scenario))
    assert result.passed, "\n" + text(result)


def test_library_uses_the_drivers_names() -> None:
    """The library's own files use no deprecated name (scenarios/README.md, "Deprecated names")."""
    assert [note for path in FILES for note in load_file(path).deprecations] == []


def test_readme_example_is_a_library_file_that_loads() -> None:
    readme = (LIBRARY / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Writing scenarios", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    named = section.split("(it is `", 1)[1].split("`", 1)[0]
    assert (LIBRARY / named).read_text(encoding="utf-8") == example
    assert load_file(LIBRARY / named).name.startswith("start and stop are refused")


def test_readme_names_only_existing_scenarios() -> None:
    readme = (LIBRARY / "README.md").read_text(encoding="utf-8")
    stems = {path.stem for path in FILES}
    named = set(re.findall(r"`([a-z][a-z0-9]*(?:-[a-z0-9]+){2,})`", readme))
    assert sorted(named - stems) == []
    assert sorted(stems - named) == [], "every scenario is mapped in scenarios/README.md"
