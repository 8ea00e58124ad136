"""Scripted scenarios: YAML stories run against a fresh in-process twin and the bundled driver.

The names below are loaded when first used (PEP 562), so ``iemdcr-sim serve``, which only registers the
``scenario`` sub-command's flags, does not import the runner, the driver and pyocmf at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iemdcr_twin.simulator.scenario.loader import (
        Scenario,
        ScenarioFileError,
        Step,
        discover,
        load_file,
        load_text,
    )
    from iemdcr_twin.simulator.scenario.results import Failure, ScenarioResult
    from iemdcr_twin.simulator.scenario.runner import run_all, run_scenario

_HOMES = {
    "Scenario": "loader",
    "ScenarioFileError": "loader",
    "Step": "loader",
    "discover": "loader",
    "load_file": "loader",
    "load_text": "loader",
    "Failure": "results",
    "ScenarioResult": "results",
    "run_all": "runner",
    "run_scenario": "runner",
}

__all__ = [
    "Failure",
    "Scenario",
    "ScenarioFileError",
    "ScenarioResult",
    "Step",
    "discover",
    "load_file",
    "load_text",
    "run_all",
    "run_scenario",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
