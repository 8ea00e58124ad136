"""Scenario files: YAML (``yaml_files.load``: no key twice, YAML 1.2 floats) checked against
``scenarios/schema.json``, then a few semantic checks.

The accepted step names are the step registry's (``steps.STEPS``); deprecated names (scenarios/README.md) are
rewritten to the driver's and listed in ``Scenario.deprecations``.

Every problem becomes one message naming the file, the step index and the key, and all the schema and semantic
problems of a file that parses are reported together, before anything runs (the CLI exits 2). YAML that does
not parse (a syntax error, a key written twice) or text that is not UTF-8 stops at its first problem, named with
its line where PyYAML gives one. A part the schema refuses (a step, or a top-level key such as ``epoch``) is left
out of the semantic checks of that part, which assume a valid shape; every other part is still checked.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.events import (
    COMMUNICATION_FAULT_CLEARED,
    COMMUNICATION_FAULT_RAISED,
    POWERMETER,
    PUBLIC_KEY_OCMF,
    REINITIALISING,
    TRANSACTION_ENDED,
)
from iemdcr_twin.simulator import schemas, yaml_files
from iemdcr_twin.simulator.clock import ClockError, check_epoch
from iemdcr_twin.simulator.model.profiles import SWITCH_NAMES
from iemdcr_twin.simulator.scenario import actions, expectations
from iemdcr_twin.simulator.scenario.durations import parse_duration
from iemdcr_twin.simulator.scenario.steps import STEPS

SCHEMA_VERSION = 1
DEFAULT_REQUEST_TIMEOUT = "2s"  # wall time; hang scenarios set a shorter one
DEFAULT_EPOCH = "2025-06-06T08:00:00+00:00"
# The step names are the registry's: the handler modules register every step when imported (steps.py).
HANDLER_MODULES = (actions, expectations)
ACTIONS = tuple(sorted(STEPS))
CHECKS = frozenset(name for name, kind in STEPS.items() if kind.check)
# Deprecated names (scenarios/README.md, "Deprecated names"): the driver's name replaces each one; the loader
# rewrites them to the driver's name and reports each use in Scenario.deprecations.
DEPRECATED_EVENTS: dict[str, str] = {"published": POWERMETER, "public_key": PUBLIC_KEY_OCMF}
DEPRECATED_KEYS: dict[str, dict[str, str]] = {
    "expect_published": {"public_key": PUBLIC_KEY_OCMF},
    "expect_errors": {
        "raised": COMMUNICATION_FAULT_RAISED,
        "cleared": COMMUNICATION_FAULT_CLEARED,
        "reinitialised": REINITIALISING,
        "active": "communication_fault_active",
    },
}
SWITCH_KEYS = frozenset(SWITCH_NAMES)
DRIVER_DEFAULTS: dict[str, Any] = {"CT": "EVSEID", "CI": "DE*ISA*E0001"}


def schema_path() -> Path:
    """The published schema: shipped inside the package (``scenarios/schema.json`` links to it)."""
    return Path(__file__).with_name("schema.json")


@functools.cache
def schema() -> dict[str, Any]:
    """The published schema (JSON Schema 2020-12, ``schema_path()``), read once."""
    with schema_path().open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


class ScenarioFileError(Exception):
    """A file that cannot run; ``messages`` has one line per problem, each naming file, step and key."""

    def __init__(self, path: Path, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.path = path
        self.messages = messages


@dataclass
class Step:
    """One step: its label (``steps[3]`` or ``steps[5].repeat.steps[1]``), its action and its value."""

    label: str
    action: str
    value: Any
    expect: dict[str, Any] | None = None
    note: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    children: list[Step] = field(default_factory=list)
    broken: bool = False  # the schema refused it: the flow checks still see its marks and responses

    @property
    def is_check(self) -> bool:
        """Whether the step observes (its registered kind's ``check``): it does not move ``previous``."""
        return self.action in CHECKS


@dataclass
class Scenario:
    """A loaded file (scenarios.md §1): ``epoch`` in Unix seconds, ``meter`` and ``driver`` blocks (the driver's
    with DRIVER_DEFAULTS), the steps, and one line per deprecated name the file used (file, step, key)."""

    path: Path
    name: str
    seed: str
    epoch: float
    meter: dict[str, Any]
    driver: dict[str, Any]
    steps: list[Step]
    description: str = ""
    deprecations: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        """The file name without its suffix (the default seed, the report's test name)."""
        return self.path.stem

    @property
    def switches(self) -> dict[str, Any]:
        """The meter block's firmware switches (meter-api.md §6)."""
        return {key: value for key, value in self.meter.items() if key in SWITCH_KEYS}


def discover(paths: list[Path]) -> list[Path]:
    """YAML files named by ``paths`` (files, or directories searched for ``*.yaml``/``*.yml``), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            found.append(path)
    return found


def load_file(path: Path) -> Scenario:
    """``load_text`` of a UTF-8 file; ScenarioFileError when it cannot be read, is not UTF-8 or cannot be
    loaded."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError(path, [f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:  # as the fleet file's loader says it
        raise ScenarioFileError(path, [f"{path}: not valid YAML: {' '.join(str(exc).split())}"]) from None
    return load_text(text, path)


def load_text(text: str, path: Path) -> Scenario:
    """A Scenario from YAML text (``path`` names it in messages); ScenarioFileError with every schema and
    semantic problem, or with the first YAML problem when the text does not parse."""
    try:
        data = yaml_files.load(text)
    except yaml.YAMLError as exc:
        where = yaml_files.where(exc)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioFileError(path, [f"{path}:{' ' + where if where else ''}: not valid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ScenarioFileError(path, [f"{path}: a scenario is a mapping with version, name and steps"])
    try:
        errors = _schema_errors(data)
    except FileNotFoundError as exc:
        raise ScenarioFileError(path, [f"{path}: {exc}"]) from None
    problems = [_message(error, data) for error in errors]
    data = schemas.whole_numbers(schema(), data)  # an integer written 5.0 is the int 5
    scenario = _build(data, path, problems, _broken_parts(errors))
    if problems:
        raise ScenarioFileError(path, [f"{path}: {message}" for message in problems])
    return scenario


# ---- schema errors as messages -------------------------------------------------------------------------


def schema_problems(data: Any) -> list[str]:
    """One message per place ``data`` breaks the published schema (read as ``schemas.StrictValidator`` reads
    every schema of the twin: finite numbers, integers without a fraction, ECMA-262 patterns)."""
    return [_message(error, data) for error in _schema_errors(data)]


def _schema_errors(data: Any) -> list[jsonschema.ValidationError]:
    validator = schemas.validator(schema())
    return sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])


Part = tuple[Any, ...]


def _broken_parts(errors: list[jsonschema.ValidationError]) -> set[Part]:
    """Where the schema errors sit, as the semantic checks skip them: the innermost step of each error's path
    (``('steps', 5, 'repeat', 'steps', 1)``), else its top-level key (``('epoch',)``); an error of the whole
    document (a missing or unknown top-level key) breaks no part."""
    broken: set[Part] = set()
    for error in errors:
        path = list(error.absolute_path)
        step: Part | None = None
        for index in range(len(path) - 1):
            if path[index] == "steps" and isinstance(path[index + 1], int):
                step = tuple(path[: index + 2])
        if step is not None:
            broken.add(step)
        elif path:
            broken.add((path[0],))
    return broken


def _action_of(step: Any) -> str | None:
    if not isinstance(step, dict):
        return None
    actions = [key for key in step if key in ACTIONS and key != "expect"]
    if len(actions) == 1:
        return str(actions[0])
    return "expect" if not actions and "expect" in step else None


def location(path: list[Any], data: Any = None) -> str:
    """``['steps', 3, 'start', 'evse']`` → ``step 3 (start): key evse``; top-level keys read ``key meter.profile``.

    With ``data`` the step's own action is named even when the error sits in its ``expect`` or ``note``.
    """
    parts: list[str] = []
    keys: list[Any] = []
    node = data
    index = 0
    while index < len(path):
        item = path[index]
        if item == "steps" and index + 1 < len(path) and isinstance(path[index + 1], int):
            step_no = path[index + 1]
            step = node[item][step_no] if isinstance(node, dict) and isinstance(node.get(item), list) else None
            action = _action_of(step)
            parts.append(f"step {step_no}" + (f" ({action})" if action else ""))
            index += 2
            if index < len(path) and path[index] == action:
                index += 1
            if action == "repeat" and index < len(path) and path[index] == "steps":
                node = step.get("repeat") if isinstance(step, dict) else None
                continue
            keys = list(path[index:])
            break
        keys.append(item)
        node = node.get(item) if isinstance(node, dict) else None
        index += 1
    text = " > ".join(parts)
    if keys:
        key = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys).replace(".[", "[")
        text = f"{text}: key {key}" if text else f"key {key}"
    return text or "top level"


def _message(error: jsonschema.ValidationError, data: Any) -> str:
    where = location(list(error.absolute_path), data)
    rule = error.schema if isinstance(error.schema, dict) else {}
    custom = rule.get("x-error")
    if error.validator == "additionalProperties":
        allowed = sorted(rule.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        names = ", ".join(unknown) or "?"
        return f"{where}: unknown key {names}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "not" and rule.get("description"):  # e.g. a network rule's key another action owns
        return f"{where}: {rule['description']}"
    if custom:
        return f"{where}: {error.instance!r} {custom}" if "duration" in custom else f"{where}: {custom}"
    if error.validator in ("anyOf", "oneOf") and error.context:
        # The branch that got furthest into the value is the one the author meant (a list of rules, not "clear").
        deepest = max(len(e.absolute_path) for e in error.context)
        best = jsonschema.exceptions.best_match(e for e in error.context if len(e.absolute_path) == deepest)
        if best.validator == "additionalProperties" or deepest > len(error.absolute_path):
            return _message(best, data)
        return f"{where}: {best.message}"
    return f"{where}: {error.message}"


# ---- building and semantic checks ------------------------------------------------------------------------


def _build(data: dict[str, Any], path: Path, problems: list[str], broken: set[Part]) -> Scenario:
    """The Scenario, appending to ``problems`` what the semantic checks find outside the ``broken`` parts."""
    epoch_text = data.get("epoch", DEFAULT_EPOCH)
    if ("epoch",) in broken or not isinstance(epoch_text, str):
        epoch_text = DEFAULT_EPOCH  # the schema's message names it
    try:
        if not epoch_text.isascii():  # digits must be ASCII whatever this Python's fromisoformat accepts
            raise ValueError("not ASCII")
        moment = datetime.fromisoformat(epoch_text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("no UTC offset")
        epoch = moment.timestamp()
    except ValueError as exc:
        problems.append(f"key epoch: {epoch_text!r} is not ISO 8601 with an offset ({exc})")
        epoch = 0.0
    try:
        check_epoch(epoch, epoch_text)  # the scenario's clock starts there (clock.py)
    except ClockError as exc:
        problems.append(f"key epoch: {exc}")
        epoch = 0.0
    meter = _mapping(data.get("meter"))  # its switches: the schema holds them to schemas.SWITCH_PROPERTIES
    driver = {**DRIVER_DEFAULTS, **_mapping(data.get("driver"))}
    if ("driver",) not in broken:
        check_driver(driver, "key driver", problems)
    deprecations: list[str] = []
    raw_steps = data.get("steps")
    if ("steps",) in broken or not isinstance(raw_steps, list):
        raw_steps = []
    steps = _steps(raw_steps, "steps", problems, deprecations, broken, ("steps",))
    _check_flow(steps, problems, driver)
    return Scenario(
        path=path,
        name=str(data.get("name", "")),
        seed=data.get("seed", path.stem),
        epoch=epoch,
        meter=meter,
        driver=driver,
        steps=steps,
        description=data.get("description", ""),
        deprecations=[f"{path}: {message}" for message in deprecations],
    )


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def driver_settings(driver: dict[str, Any]) -> dict[str, Any]:
    """DriverConfig keyword arguments from a scenario's driver block (durations converted)."""
    settings = {k: v for k, v in driver.items() if k != "request_timeout"}
    settings["request_timeout_s"] = parse_duration(driver.get("request_timeout", DEFAULT_REQUEST_TIMEOUT))
    return settings


def check_driver(driver: dict[str, Any], where: str, problems: list[str]) -> None:
    """Append to ``problems`` what DriverConfig refuses in ``driver`` (driver.md §1, the module's manifest)."""
    try:
        DriverConfig(ip_address="127.0.0.1", port_http=1, **driver_settings(driver))
    except (ValueError, TypeError) as exc:
        problems.append(f"{where}.{exc}" if ":" in str(exc) else f"{where}: {exc}")


def _steps(
    raw_steps: list[Any],
    prefix: str,
    problems: list[str],
    deprecations: list[str],
    broken: set[Part],
    at: Part,
) -> list[Step]:
    """The Steps of ``raw_steps`` (at the key path ``at``); a step in ``broken`` is kept, marked broken and
    not checked (the schema's message names it), a repeat's nested steps are checked under it."""
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        label = f"step {index}" if prefix == "steps" else f"{prefix} > step {index}"
        if not isinstance(raw, dict):
            continue  # the schema's message names it
        actions = [key for key in raw if key not in ("note", "expect")]
        if not actions and "expect" in raw:
            actions = ["expect"]
        if (*at, index) in broken:
            known = [key for key in actions if key in ACTIONS]
            if len(known) == 1:
                steps.append(Step(f"{label} ({known[0]})", known[0], raw[known[0]], raw=raw, broken=True))
            continue
        if len(actions) != 1:
            found = ", ".join(actions) or "none"
            problems.append(f"{label}: one action per step (found: {found}); actions: {', '.join(ACTIONS)}")
            continue
        action = actions[0]
        expect = raw.get("expect") if action != "expect" else None
        if expect is not None and action not in ("start", "stop"):
            problems.append(f"{label} ({action}): key expect only follows start or stop; use a separate step")
        where = f"{label} ({action})"
        value = _drivers_names(action, raw[action], where, problems, deprecations)
        step = Step(where, action, value, expect, raw.get("note"), raw)
        if action == "repeat":
            step.children = _steps(
                raw["repeat"]["steps"],
                f"{label} (repeat)",
                problems,
                deprecations,
                broken,
                (*at, index, "repeat", "steps"),
            )
        if action == "restart_driver" and raw[action]:
            check_driver({**DRIVER_DEFAULTS, **raw[action]}, f"{step.label}: key restart_driver", problems)
        steps.append(step)
    return steps


def _drivers_names(action: str, value: Any, where: str, problems: list[str], deprecations: list[str]) -> Any:
    """``value`` with each deprecated name replaced by the driver's (a copy; the raw step stays as written).

    Each replacement adds a line to ``deprecations``; an old name beside its new one is a problem.
    """
    if not isinstance(value, dict):
        return value
    renamed = DEPRECATED_KEYS.get(action, {})
    result: dict[str, Any] = {}
    for key, item in value.items():
        new = renamed.get(key)
        if new is None:
            result[key] = item
        elif new in value:
            problems.append(f"{where}: key {key} is the deprecated name of {new}; write only {new}")
        else:
            deprecations.append(f"{where}: key {key} is deprecated; write {new} (the driver's name)")
            result[new] = item
    event = result.get("event") if action == "wait_for" else None
    if isinstance(event, str) and event in DEPRECATED_EVENTS:
        new = DEPRECATED_EVENTS[event]
        deprecations.append(f"{where}: key event: {event!r} is deprecated; write {new} (the driver's event name)")
        result["event"] = new
    return result


def walk(steps: list[Step]) -> Iterator[Step]:
    """Every step, depth first: each repeat before its nested steps."""
    for step in steps:
        yield step
        yield from walk(step.children)


def _check_flow(steps: list[Step], problems: list[str], driver: dict[str, Any]) -> None:
    """Marks named before use, ``where`` only on published, a response before a bare expect."""
    marks: set[str] = set()
    responded = False
    for step in walk(steps):
        if step.broken:  # the schema's message names it; its mark or response still counts for the steps after
            marks.update([step.value] if step.action == "mark" and isinstance(step.value, str) else [])
            responded = responded or step.action in ("start", "stop")
            continue
        value = step.value if isinstance(step.value, dict) else {}
        since = value.get("since")
        if since is not None and since not in ("start", "previous") and since not in marks:
            problems.append(f"{step.label}: key since: {since!r} names no earlier mark (or use start/previous)")
        until = value.get("until") if step.action == "expect_conformance" else None
        if until is not None and until not in ("start", "previous") and until not in marks:
            problems.append(f"{step.label}: key until: {until!r} names no earlier mark (or use start/previous)")
        if step.action == "mark":
            marks.add(step.value)
        if step.action == "wait_for" and "where" in value and value["event"] != POWERMETER:
            problems.append(f"{step.label}: key where only applies to event {POWERMETER}")
        if step.action == "wait_for" and "record" in value and value["event"] != TRANSACTION_ENDED:
            problems.append(f"{step.label}: key record only applies to event {TRANSACTION_ENDED}")
        if step.action in ("start", "stop"):
            responded = True
        if step.action == "expect" and not responded:
            problems.append(f"{step.label}: expect checks the previous start/stop response, but none came before")
        if step.action == "expect_record" and value.get("source", "response") == "response" and not responded:
            problems.append(f"{step.label}: key source: response, but no start/stop came before")
