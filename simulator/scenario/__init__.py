"""Scripted scenarios: YAML stories run against a fresh in-process twin and the bundled driver."""

from iemdcr_twin.simulator.scenario.loader import Scenario, ScenarioFileError, Step, discover, load_file, load_text
from iemdcr_twin.simulator.scenario.results import Failure, ScenarioResult
from iemdcr_twin.simulator.scenario.runner import run_all, run_scenario

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
