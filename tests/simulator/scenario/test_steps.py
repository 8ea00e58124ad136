"""One list of step names: the registry the runner dispatches through, the loader and schema.json agree."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from iemdcr_twin.simulator.scenario import actions, load_text, loader, run_scenario
from iemdcr_twin.simulator.scenario.steps import STEPS, UnknownStep, kind_of, on

README = Path(__file__).resolve().parents[3] / "scenarios" / "README.md"


def schema_steps() -> set[str]:
    return set(loader.schema()["$defs"]["step"]["properties"]) - {"note"}


def test_registry_loader_and_schema_list_the_same_steps() -> None:
    assert set(STEPS) == set(loader.ACTIONS) == schema_steps()
    assert len(loader.ACTIONS) == len(set(loader.ACTIONS)) == 22


def test_checks_are_the_registrys_and_settle_except_wait_for() -> None:
    """Checks do not move ``previous``; all but wait_for settle first (the loader's old hand-written rule)."""
    checks = {name for name, kind in STEPS.items() if kind.check}
    assert loader.CHECKS == checks == {name for name in STEPS if name.startswith("expect")} | {"wait_for", "mark"}
    assert {name for name, kind in STEPS.items() if kind.settle} == checks - {"wait_for"}
    assert all(loader.Step("s", name, None).is_check == (name in checks) for name in STEPS)


def test_the_readme_reference_has_a_row_per_step() -> None:
    text = README.read_text(encoding="utf-8").split("| Step | What it does |", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"^\| `([a-z_]+)", text, flags=re.MULTILINE)) == set(STEPS)


def test_an_unknown_step_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownStep) as caught:
        kind_of("teleport")
    assert str(caught.value).startswith("no handler for step 'teleport'; registered steps: advance, clock, ")
    assert kind_of("load").handler is actions.load


def test_a_step_name_registers_once() -> None:
    async def second_load(run: object, step: object) -> None:
        raise AssertionError("never registered")

    with pytest.raises(ValueError, match="step 'load' is already handled by load"):
        on("load")(second_load)
    assert STEPS["load"].handler is actions.load


def test_the_runner_fails_a_step_without_handler_and_names_it() -> None:
    scenario = load_text(
        "version: 1\nname: x\nsteps:\n  - wait_for: {event: initialised, timeout: 1s}\n  - advance: 1s\n",
        Path("x.yaml"),
    )
    scenario.steps[1].action = "teleport"
    result = asyncio.run(run_scenario(scenario))
    assert result.failure is not None and result.steps_run == 1
    assert result.failure.step == "step 1 (advance)"
    assert "UnknownStep: no handler for step 'teleport'" in result.failure.got
