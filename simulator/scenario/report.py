"""Scenario results as text lines, JUnit XML and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from iemdcr_twin.simulator.scenario.durations import format_duration
from iemdcr_twin.simulator.scenario.results import ScenarioResult


def line(result: ScenarioResult) -> str:
    """``PASS  stem  sim 30m  wall 0.12s  name``: one line per scenario."""
    verdict = "PASS" if result.passed else "FAIL"
    stem = Path(result.path).stem
    return (
        f"{verdict}  {stem:<55} sim {format_duration(result.sim_seconds):>9}  "
        f"wall {result.wall_seconds:6.2f}s  {result.name}"
    )


def text(result: ScenarioResult) -> str:
    """The line, and for a failure its story below it."""
    if result.failure is None:
        return line(result)
    return line(result) + "\n" + result.failure.story()


def junit(results: list[ScenarioResult], wall_seconds: float) -> str:
    """A JUnit XML testsuite: one testcase per scenario, a failure element with the story."""
    failures = sum(1 for r in results if not r.passed)
    suite = ET.Element(
        "testsuite",
        name="iemdcr-scenarios",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{wall_seconds:.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="scenarios",
            name=Path(result.path).stem,
            file=result.path,
            time=f"{result.wall_seconds:.3f}",
        )
        ET.SubElement(case, "system-out").text = f"{result.name} (simulated {result.sim_seconds:.3f} s)"
        if result.failure is not None:
            failure = ET.SubElement(
                case, "failure", message=f"{result.failure.step}: expected {result.failure.expected}"
            )
            failure.text = result.failure.story()
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def as_json(results: list[ScenarioResult], wall_seconds: float) -> str:
    """``{"passed", "failed", "wall_seconds", "scenarios": [ScenarioResult.as_dict()]}`` as indented JSON."""
    document = {
        "passed": sum(1 for r in results if r.passed),
        "failed": sum(1 for r in results if not r.passed),
        "wall_seconds": round(wall_seconds, 3),
        "scenarios": [result.as_dict() for result in results],
    }
    return json.dumps(document, indent=2) + "\n"
