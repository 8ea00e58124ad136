"""The step registry: one table from a step's name to the coroutine that runs it (scenarios.md §1, step kinds).

A handler registers itself with ``@on("load")`` (the routing idea of mobilityhouse/ocpp's ``@on(Action)``):
``actions`` holds the steps that change the world, ``expectations`` the ones that compare. Each handler is
``async def handler(run: ScenarioRun, step: Step) -> None``; it reads ``step.value`` and raises ``StepFailure``
when a check does not hold. The runner dispatches with ``kind_of(step.action)``; the loader's accepted actions
are this table's names, and ``tests/simulator/scenario/test_steps.py`` holds ``schema.json`` to the same list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from iemdcr_twin.simulator.scenario.loader import Step
    from iemdcr_twin.simulator.scenario.runner import ScenarioRun

Handler = Callable[["ScenarioRun", "Step"], Awaitable[None]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class StepKind:
    """One registered step.

    ``check``: the step observes and does not change the world, so it does not move the ``previous`` scope
    (``since: previous`` means the start of the last step that is not a check). ``settle``: the runner waits
    for the next idle moment (no simulated time passes) before running it.
    """

    name: str
    handler: Handler
    check: bool
    settle: bool


class UnknownStep(LookupError):
    """A step name with no handler: names the step and the registered ones."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no handler for step {name!r}; registered steps: {', '.join(sorted(STEPS))}")
        self.name = name


STEPS: dict[str, StepKind] = {}


def on(name: str, *, check: bool = False, settle: bool | None = None) -> Callable[[H], H]:
    """Register the decorated handler as the step ``name``; ``settle`` defaults to ``check``.

    ValueError when ``name`` already has a handler (the table stays as it was).
    """

    def register(handler: H) -> H:
        if name in STEPS:
            raise ValueError(f"step {name!r} is already handled by {STEPS[name].handler.__qualname__}")
        STEPS[name] = StepKind(name, handler, check, check if settle is None else settle)
        return handler

    return register


def kind_of(name: str) -> StepKind:
    """The registered step ``name``; UnknownStep when there is none."""
    try:
        return STEPS[name]
    except KeyError:
        raise UnknownStep(name) from None
