"""Runs one scenario: a fresh in-process twin and the bundled driver on one auto-jumping virtual clock.

Steps run in order, each by the handler the step registry names (``steps.kind_of``; the handlers are in
``actions`` and ``expectations``). Action steps change the world (load, power, faults, clock, driver commands);
check steps (``expect*``, ``mark``) first let the system settle (the next idle moment, no time passes) and then
compare; ``wait_for`` waits for a driver event in simulated time. The first failing step ends the run with a
failure story: the step, what was expected, what happened, and the last requests on the wire (scenarios.md §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import DriverEvent
from iemdcr_twin.driver.types import TransactionStartResponse, TransactionStopResponse
from iemdcr_twin.simulator.conformance import TrueTime, attach
from iemdcr_twin.simulator.fleet import MeterSlot, MeterSpec, Twin
from iemdcr_twin.simulator.scenario.loader import DRIVER_DEFAULTS, Scenario, Step, driver_settings
from iemdcr_twin.simulator.scenario.matching import describe_entry
from iemdcr_twin.simulator.scenario.results import Failure, ScenarioResult, StepFailure, step_text
from iemdcr_twin.simulator.scenario.steps import kind_of
from iemdcr_twin.simulator.scenario.vclock import ScenarioClock, ScenarioHttpClient, wall

__all__ = ["Failure", "ScenarioResult", "ScenarioRun", "Scope", "Seen", "StepFailure", "run_all", "run_scenario"]

log = logging.getLogger("iemdcr.scenario")
WALL_LIMIT_S = 60.0
TEARDOWN_LIMIT_S = 10.0
STORY_REQUESTS = 10
BIND = "127.0.0.1"


@dataclass(frozen=True)
class Scope:
    """A point in the run: journal position, event position, simulated time."""

    journal_seq: int
    event_index: int
    sim_time: float


@dataclass(frozen=True)
class Seen:
    """A driver event as the run recorded it: the driver's name (``powermeter``, ``public_key_ocmf``,
    ``initialised``...), its data, and the simulated time it arrived."""

    name: str
    data: Any
    time: float


@dataclass
class RunState:
    """What the steps share: the events seen, the marks, the last start/stop response, the last checked PG,
    and how many starts ran (for the default transaction_id)."""

    events: list[Seen] = field(default_factory=list)
    marks: dict[str, Scope] = field(default_factory=dict)
    response: TransactionStartResponse | TransactionStopResponse | None = None
    last_pg: int | None = None
    starts: int = 0


class ScenarioRun:
    """One scenario, run once: owns the twin, the driver, the clock and the state the handlers work on."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.clock = ScenarioClock(scenario.epoch)
        self.state = RunState()
        self.twin: Twin | None = None
        self.slot: MeterSlot | None = None
        self.driver: IemDcrDriver | None = None
        self.driver_config: dict[str, Any] = dict(scenario.driver)
        self.previous = Scope(0, 0, scenario.epoch)
        self.steps_run = 0
        self._current: Step | None = None
        self._current_label = "setup"
        self._wakeups: list[asyncio.Future[None]] = []
        self._unsubscribe: Callable[[], None] | None = None

    # ---- the run -------------------------------------------------------------------------------------

    async def run(self) -> ScenarioResult:
        """Set up, run every step, tear down; never raises (a crash becomes the failure of its step)."""
        started = wall()
        failure: Failure | None = None
        jumper = asyncio.create_task(self.clock.run(), name=f"autojump {self.scenario.stem}")
        self.clock.on_move.append(self._poke)
        try:
            async with asyncio.timeout(WALL_LIMIT_S):
                await self._setup()
                await self.run_steps(self.scenario.steps)
        except StepFailure as exc:
            failure = self._failure(exc.expected, exc.got)
        except TimeoutError:
            failure = self._failure(
                f"the scenario to finish within {WALL_LIMIT_S:g} s of wall time", "still running at this step"
            )
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.debug("scenario %s crashed", self.scenario.path, exc_info=True)
            failure = self._failure("the step to run", f"an error in the runner or the twin: {detail}")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(TEARDOWN_LIMIT_S):
                    await self._teardown()
            jumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jumper
        return ScenarioResult(
            path=str(self.scenario.path),
            name=self.scenario.name,
            passed=failure is None,
            sim_seconds=self.clock.now() - self.scenario.epoch,
            wall_seconds=wall() - started,
            steps_run=self.steps_run,
            failure=failure,
        )

    async def run_steps(self, steps: list[Step], suffix: str = "") -> None:
        """Run ``steps`` in order by their registered handlers; ``suffix`` is added to labels (repeat)."""
        for step in steps:
            self._current, self._current_label = step, step.label + suffix
            kind = kind_of(step.action)
            if not kind.check:
                self.previous = self.here()
            if kind.settle:
                await self.clock.settle()
            await kind.handler(self, step)
            self.steps_run += 1

    async def _setup(self) -> None:
        meter = self.scenario.meter
        self.twin = Twin(self.clock, bind=BIND, seed=self.scenario.seed)
        spec = MeterSpec(
            port=0,
            profile=meter.get("profile", "iem-dcr-125"),
            serial=meter.get("serial"),
            switches=self.scenario.switches,
        )
        self.slot = self.twin.add_meter(spec)
        attach(self.slot.host, TrueTime.SHARED)  # the driver reads this clock: its TM writes are judged by it
        if meter.get("powered") is False:
            self.slot.meter.power_off()
        with self.clock.hold():
            await self.twin.start()
        self.state.marks["start"] = Scope(0, 0, self.scenario.epoch)
        await self._start_driver()

    async def _teardown(self) -> None:
        if self.driver is not None:
            await self.driver.stop()
        if self.twin is not None:
            await self.twin.stop()

    # ---- the driver ----------------------------------------------------------------------------------

    async def _start_driver(self) -> None:
        settings = driver_settings(self.driver_config)
        config = DriverConfig.from_url(self.meter_slot.url, clock=self.clock, **settings)
        client = ScenarioHttpClient(config.base_url, config.request_timeout_s, self.clock)
        self.driver = IemDcrDriver(config, client=client)
        self._unsubscribe = self.driver.events.on(self._on_event)
        await self.driver.start()

    async def restart_driver(self, changes: dict[str, Any]) -> None:
        """Stop the driver and start a new one with ``changes`` merged into its config; the meter keeps running."""
        with self.clock.hold():
            if self._unsubscribe is not None:
                self._unsubscribe()
            await self.drv.stop()
            self.driver_config = {**self.driver_config, **changes}
        await self._start_driver()

    @property
    def evse_id(self) -> str:
        """The CI the driver is configured with: a start's default evse_id."""
        return str(self.driver_config.get("CI", DRIVER_DEFAULTS["CI"]))

    @property
    def meter_slot(self) -> MeterSlot:
        """The one meter of the run's twin (set up before the first step)."""
        assert self.slot is not None
        return self.slot

    @property
    def drv(self) -> IemDcrDriver:
        """The driver running now (a restart replaces it)."""
        assert self.driver is not None
        return self.driver

    # ---- events, scopes and waiting ------------------------------------------------------------------

    def _on_event(self, event: DriverEvent) -> None:
        self.state.events.append(Seen(event.name, event.data, self.clock.now()))
        self._poke()

    def _poke(self) -> None:
        wakeups, self._wakeups = self._wakeups, []
        for future in wakeups:
            if not future.done():
                future.set_result(None)

    async def something_happens(self) -> None:
        """Wait until the driver emits an event or the clock moves."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wakeups.append(future)
        await future

    def scope(self, since: str | None, default: str) -> Scope:
        """The point a ``since:`` names: ``previous``, ``start`` or a mark (``default`` when None)."""
        name = since or default
        if name == "previous":
            return self.previous
        return self.state.marks[name]

    def here(self) -> Scope:
        """The present point: the journal's last seq, the events seen so far, the simulated time."""
        return Scope(self.meter_slot.host.journal.last_seq, len(self.state.events), self.clock.now())

    # ---- failure stories -----------------------------------------------------------------------------

    def _failure(self, expected: str, got: str) -> Failure:
        step = self._current
        text = step_text(step.raw) if step is not None else "(setting up the twin and the driver)"
        requests: list[str] = []
        if self.slot is not None:
            entries = self.slot.host.journal.entries()
            requests = [describe_entry(entry, self.scenario.epoch) for entry in entries[-STORY_REQUESTS:]]
        return Failure(self._current_label, text, expected, got, requests, step.note if step is not None else None)


async def run_scenario(scenario: Scenario) -> ScenarioResult:
    """Run one scenario on its own twin, driver and clock."""
    return await ScenarioRun(scenario).run()


async def run_all(scenarios: list[Scenario], limit: int = 4) -> list[ScenarioResult]:
    """Run scenarios concurrently (each with its own twin and clock), results in the given order."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(scenario: Scenario) -> ScenarioResult:
        async with gate:
            return await run_scenario(scenario)

    return list(await asyncio.gather(*(one(scenario) for scenario in scenarios)))
