"""Runs one scenario: a fresh in-process twin and the bundled driver on one auto-jumping virtual clock.

Steps run in order. Action steps change the world (load, power, faults, clock, driver commands); check
steps (``expect*``, ``mark``) first let the system settle (the next idle moment, no time passes) and then
compare; ``wait_for`` waits for a driver event in simulated time. The first failing step ends the run with
a failure story: the step, what was expected, what happened, and the last requests on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import DriverEvent
from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    Powermeter,
    TransactionReq,
    TransactionStartResponse,
    TransactionStopResponse,
)
from iemdcr_twin.simulator import meter_view
from iemdcr_twin.simulator.conformance import TrueTime, WindowError, attach, build_report
from iemdcr_twin.simulator.fleet import MeterSlot, MeterSpec, Twin
from iemdcr_twin.simulator.scenario import records
from iemdcr_twin.simulator.scenario.durations import parse_duration
from iemdcr_twin.simulator.scenario.loader import DRIVER_DEFAULTS, Scenario, Step, driver_settings
from iemdcr_twin.simulator.scenario.matching import (
    compare,
    describe_entry,
    describe_pattern,
    entry_problems,
    match_subsequence,
    show,
)
from iemdcr_twin.simulator.scenario.vclock import ScenarioClock, ScenarioHttpClient, wall

log = logging.getLogger("iemdcr.scenario")
WALL_LIMIT_S = 60.0
TEARDOWN_LIMIT_S = 10.0
DEFAULT_WAIT_TIMEOUT = "60s"
STORY_REQUESTS = 10
EVENT_NAMES = {"powermeter": "published", "public_key_ocmf": "public_key"}
BIND = "127.0.0.1"
FAULT_KINDS = {"raised": "communication_fault_raised", "cleared": "communication_fault_cleared"}


class StepFailure(Exception):
    """A check that did not hold: what was expected and what happened."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}; got {got}")
        self.expected = expected
        self.got = got


@dataclass
class Failure:
    step: str
    step_text: str
    expected: str
    got: str
    requests: list[str]
    note: str | None = None

    def story(self) -> str:
        lines = [f"  at {self.step}: {self.step_text}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append(f"  expected: {self.expected}")
        lines.append(f"  got:      {self.got}")
        if self.requests:
            lines.append("  last requests on the wire:")
            lines.extend(f"    {line}" for line in self.requests)
        else:
            lines.append("  no requests on the wire")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "step_text": self.step_text,
            "note": self.note,
            "expected": self.expected,
            "got": self.got,
            "requests": list(self.requests),
        }


@dataclass
class ScenarioResult:
    path: str
    name: str
    passed: bool
    sim_seconds: float
    wall_seconds: float
    steps_run: int
    failure: Failure | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "verdict": "PASS" if self.passed else "FAIL",
            "sim_seconds": round(self.sim_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "steps_run": self.steps_run,
            "failure": self.failure.as_dict() if self.failure else None,
        }


@dataclass(frozen=True)
class Scope:
    """A point in the run: journal position, event position, simulated time."""

    journal_seq: int
    event_index: int
    sim_time: float


@dataclass(frozen=True)
class Seen:
    """A driver event as the scenario sees it (``published``, ``public_key``, ``initialised``...)."""

    name: str
    data: Any
    time: float


@dataclass
class _State:
    events: list[Seen] = field(default_factory=list)
    marks: dict[str, Scope] = field(default_factory=dict)
    response: TransactionStartResponse | TransactionStopResponse | None = None
    last_pg: int | None = None
    starts: int = 0


def published_fields(powermeter: Powermeter) -> dict[str, Any]:
    """A Powermeter flattened to the names scenarios use."""
    export = powermeter.energy_Wh_export
    return {
        "current_A": powermeter.current_A.DC if powermeter.current_A else None,
        "voltage_V": powermeter.voltage_V.DC if powermeter.voltage_V else None,
        "power_W": powermeter.power_W.total if powermeter.power_W else None,
        "energy_Wh_import": powermeter.energy_Wh_import.total,
        "energy_Wh_export": export.total if export else None,
        "meter_id": powermeter.meter_id,
        "timestamp": powermeter.timestamp,
    }


PUBLISHED_KEYS = ("current_A", "voltage_V", "power_W", "energy_Wh_import", "energy_Wh_export", "meter_id", "timestamp")


class ScenarioRun:
    """One scenario, run once."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.clock = ScenarioClock(scenario.epoch)
        self.state = _State()
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
        started = wall()
        failure: Failure | None = None
        jumper = asyncio.create_task(self.clock.run(), name=f"autojump {self.scenario.stem}")
        self.clock.on_move.append(self._poke)
        try:
            async with asyncio.timeout(WALL_LIMIT_S):
                await self._setup()
                await self._steps(self.scenario.steps, "")
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

    async def _start_driver(self) -> None:
        settings = driver_settings(self.driver_config)
        config = DriverConfig.from_url(self.meter_slot.url, clock=self.clock, **settings)
        client = ScenarioHttpClient(config.base_url, config.request_timeout_s, self.clock)
        self.driver = IemDcrDriver(config, client=client)
        self._unsubscribe = self.driver.events.on(self._on_event)
        await self.driver.start()

    @property
    def meter_slot(self) -> MeterSlot:
        assert self.slot is not None
        return self.slot

    @property
    def drv(self) -> IemDcrDriver:
        assert self.driver is not None
        return self.driver

    # ---- events and waiting ------------------------------------------------------------------------

    def _on_event(self, event: DriverEvent) -> None:
        self.state.events.append(Seen(EVENT_NAMES.get(event.name, event.name), event.data, self.clock.now()))
        self._poke()

    def _poke(self) -> None:
        wakeups, self._wakeups = self._wakeups, []
        for future in wakeups:
            if not future.done():
                future.set_result(None)

    async def _something_happens(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wakeups.append(future)
        await future

    def _scope(self, since: str | None, default: str) -> Scope:
        name = since or default
        if name == "previous":
            return self.previous
        return self.state.marks[name]

    def _here(self) -> Scope:
        return Scope(self.meter_slot.host.journal.last_seq, len(self.state.events), self.clock.now())

    # ---- steps -----------------------------------------------------------------------------------------

    async def _steps(self, steps: list[Step], suffix: str) -> None:
        for step in steps:
            self._current, self._current_label = step, step.label + suffix
            if not step.is_check:
                self.previous = self._here()
            if step.is_check and step.action != "wait_for":
                await self.clock.settle()
            await getattr(self, "_do_" + step.action)(step, step.value)
            self.steps_run += 1

    async def _do_repeat(self, step: Step, value: dict[str, Any]) -> None:
        for iteration in range(value["times"]):
            await self._steps(step.children, f" [iteration {iteration + 1} of {value['times']}]")

    async def _do_load(self, step: Step, value: dict[str, Any]) -> None:
        ramp = parse_duration(value["ramp"]) if "ramp" in value else 0.0
        self.meter_slot.meter.set_load(value.get("current_A"), value.get("voltage_V"), ramp)

    async def _do_power(self, step: Step, value: Any) -> None:
        twin, serial = self.twin, self.meter_slot.meter.serial
        assert twin is not None
        with self.clock.hold():
            if isinstance(value, bool) or value in ("off", "on"):  # YAML 1.1 reads bare on/off as booleans
                await twin.set_power(serial, value in (True, "on"))
            elif value == "cycle":
                await twin.power_cycle(serial, 0.0)
            else:
                await twin.power_cycle(serial, parse_duration(value["cycle"]))

    async def _do_fault(self, step: Step, value: dict[str, Any]) -> None:
        meter = self.meter_slot.meter
        if "raise" in value:
            meter.raise_fault(value["raise"])
        if "clear" in value:
            for name in sorted(meter.faults) if value["clear"] == "all" else [value["clear"]]:
                meter.clear_fault(name)
        if "network" in value:
            from iemdcr_twin.simulator.network import NetworkFaults, parse_rules

            faults = NetworkFaults.of(self.meter_slot.host)
            if value["network"] == "clear":
                faults.clear()
            else:
                seed, rules = parse_rules({"seed": value.get("seed", 0), "rules": value["network"]})
                faults.replace(seed, rules)

    async def _do_profile(self, step: Step, value: dict[str, Any]) -> None:
        self.meter_slot.meter.set_switches(value)

    async def _do_registers(self, step: Step, value: dict[str, int]) -> None:
        self.meter_slot.meter.set_registers(value.get("import_mWh"), value.get("export_mWh"))

    async def _do_advance(self, step: Step, value: str) -> None:
        self.clock.advance(parse_duration(value))
        await self.clock.settle()

    async def _do_wait(self, step: Step, value: str) -> None:
        await self.clock.sleep(parse_duration(value))

    async def _do_clock(self, step: Step, value: dict[str, str]) -> None:
        if "advance" in value:
            await self._do_advance(step, value["advance"])
        else:
            await self._do_wait(step, value["wait"])

    async def _do_mark(self, step: Step, value: str) -> None:
        self.state.marks[value] = self._here()

    async def _do_restart_driver(self, step: Step, value: dict[str, Any] | None) -> None:
        with self.clock.hold():
            if self._unsubscribe is not None:
                self._unsubscribe()
            await self.drv.stop()
            self.driver_config = {**self.driver_config, **(value or {})}
        await self._start_driver()

    async def _do_start(self, step: Step, value: dict[str, Any]) -> None:
        self.state.starts += 1
        fields = {
            "evse_id": self.driver_config.get("CI", DRIVER_DEFAULTS["CI"]),
            "transaction_id": f"tx-{self.state.starts:04d}",
            "identification_status": "ASSIGNED",
            "identification_type": "ISO14443",
            "identification_flags": ["RFID_PLAIN"],
            "identification_level": "VERIFIED",
            "identification_data": "04A1B2C3",
            **value,
        }
        level = fields["identification_level"]
        request = TransactionReq(
            evse_id=fields["evse_id"],
            transaction_id=fields["transaction_id"],
            identification_status=OCMFUserIdentificationStatus(fields["identification_status"]),
            identification_type=OCMFIdentificationType(fields["identification_type"]),
            identification_flags=[OCMFIdentificationFlags(flag) for flag in fields["identification_flags"]],
            identification_level=OCMFIdentificationLevel(level) if level else None,
            identification_data=fields["identification_data"],
            tariff_text=fields.get("tariff_text"),
        )
        self.state.response = await self.drv.start_transaction(request)
        if step.expect is not None:
            self._check_response(step.expect)

    async def _do_stop(self, step: Step, value: dict[str, Any] | None) -> None:
        self.state.response = await self.drv.stop_transaction((value or {}).get("transaction_id", ""))
        if step.expect is not None:
            self._check_response(step.expect)

    async def _do_expect(self, step: Step, value: dict[str, Any]) -> None:
        self._check_response(value)

    async def _do_wait_for(self, step: Step, value: dict[str, Any]) -> None:
        name = value["event"]
        scope = self._scope(value.get("since"), "previous")
        deadline = self.clock.now() + parse_duration(value.get("timeout", DEFAULT_WAIT_TIMEOUT))
        wanted = int(value.get("count", 1))
        settled = False
        while True:
            found = [e for e in self.state.events[scope.event_index :] if e.name == name and self._event_ok(e, value)]
            if len(found) >= wanted:
                event = found[wanted - 1]
                if "elapsed_s" in value:
                    problems = compare(value["elapsed_s"], event.time - scope.sim_time, "elapsed_s")
                    if problems:
                        raise StepFailure(f"{name} after {show(value['elapsed_s'])} s", "; ".join(problems))
                return
            if self.clock.now() >= deadline:
                if not settled:  # something due at the deadline itself gets its chance
                    settled = True
                    await self.clock.settle()
                    continue
                raise StepFailure(
                    self._describe_wait(value, wanted),
                    f"not within {value.get('timeout', DEFAULT_WAIT_TIMEOUT)} of simulated time; "
                    + self._recent_events(scope),
                )
            await self._something_happens()

    def _describe_wait(self, value: dict[str, Any], wanted: int) -> str:
        text = f"event {value['event']}"
        if wanted > 1:
            text += f" (occurrence {wanted})"
        if "where" in value:
            text += f" where {show(value['where'])}"
        if "message" in value:
            text += f" with message containing {value['message']!r}"
        return text

    def _recent_events(self, scope: Scope) -> str:
        seen = self.state.events[scope.event_index :]
        if not seen:
            return "no driver events since then"
        shown = [self._describe_event(e) for e in seen if e.name != "published"][-5:]
        published = [e for e in seen if e.name == "published"]
        if published:
            shown.append(f"{len(published)} x published, last {show(published_fields(published[-1].data))}")
        return "driver events: " + "; ".join(shown)

    def _describe_event(self, event: Seen) -> str:
        at = f"t+{event.time - self.scenario.epoch:.3f}s"
        if event.name == "published":
            return f"{at} published {show(published_fields(event.data))}"
        if event.name == "public_key":
            return f"{at} public_key {str(event.data)[:16]}..."
        if event.name == "transaction_ended":
            return f"{at} transaction_ended ({records.summary(event.data.signed_meter_value.signed_meter_data)})"
        return f"{at} {event.name}" + (f" ({event.data})" if event.data else "")

    def _event_ok(self, event: Seen, value: dict[str, Any]) -> bool:
        if "record" in value:  # transaction_ended: the record it carries (driver fix 16)
            signed = getattr(event.data, "signed_meter_value", None)
            if signed is None:
                return False
            problems = self._record_check(value["record"], signed.signed_meter_data, signed.public_key)
            if problems:
                raise StepFailure(show(value), "; ".join(problems))
            return True
        if "where" in value:
            if not isinstance(event.data, Powermeter):
                return False
            fields = published_fields(event.data)
            return all(not compare(want, fields.get(key), key) for key, want in value["where"].items())
        if "message" in value:
            return isinstance(event.data, str) and value["message"] in event.data
        return True

    # ---- checks ----------------------------------------------------------------------------------------

    def _check_response(self, expect: dict[str, Any]) -> None:
        response = self.state.response
        if response is None:
            raise StepFailure("a start/stop response", "none")
        got = show(_response_summary(response))
        problems: list[str] = []
        if "status" in expect and response.status.value != expect["status"]:
            problems.append(f"status {response.status.value} (expected {expect['status']})")
        if "error" in expect and expect["error"] not in (response.error or ""):
            problems.append(f"error {response.error!r} does not contain {expect['error']!r}")
        if expect.get("no_error") and response.error:
            problems.append(f"an error: {response.error!r}")
        signed = getattr(response, "signed_meter_value", None)
        if expect.get("no_record") and signed is not None:
            problems.append("a record, although none was expected")
        if "record" in expect:
            if not isinstance(response, TransactionStopResponse) or signed is None:
                problems.append("no record in the response")
            else:
                problems.extend(self._record_check(expect["record"], signed.signed_meter_data, signed.public_key))
        if problems:
            raise StepFailure(show(expect), "; ".join(problems) + f" - response: {got}")

    def _record_check(self, expected: dict[str, Any], record: str, sent_key: str | None) -> list[str]:
        meter_key = self.meter_slot.meter.signer.public_key_hex
        problems, pg = records.record_problems(expected, record, meter_key, self.state.last_pg)
        if expected.get("public_key") == "meter" and sent_key != meter_key:
            problems.append(f"public_key {str(sent_key)[:24]}... is not the meter's {meter_key[:24]}...")
        if pg is not None:
            self.state.last_pg = pg
        if problems:
            problems.append("record: " + records.summary(record))
        return problems

    async def _do_expect_record(self, step: Step, value: dict[str, Any]) -> None:
        if value.get("source", "response") == "meter":
            stored = self.meter_slot.meter.records
            index = value.get("index", -1)
            if not stored or not -len(stored) <= index < len(stored):
                raise StepFailure(f"a stored record at index {index}", f"{len(stored)} records on the meter")
            problems = self._record_check(value, stored[index].ocmf, None)
        else:
            response = self.state.response
            signed = getattr(response, "signed_meter_value", None)
            if signed is None:
                raise StepFailure("a record in the last stop response", show(_response_summary(response)))
            problems = self._record_check(value, signed.signed_meter_data, signed.public_key)
        if problems:
            raise StepFailure(show(value), "; ".join(problems))

    async def _do_expect_records(self, step: Step, value: dict[str, Any]) -> None:
        meter = self.meter_slot.meter
        stored = list(meter.records)
        problems: list[str] = []
        if "count" in value:
            problems.extend(compare(value["count"], len(stored), "record count"))
        if value.get("continuous"):
            for before, after in itertools.pairwise(stored):
                if after.pagination != before.pagination + 1:
                    problems.append(f"PG jumps from T{before.pagination} to T{after.pagination}")
        if value.get("monotonic"):  # modulo the register's width: a wrap is not a step back
            last: str | None = None
            for record in stored:
                if records.register_step_wh(record.begin_RV, record.end_RV) < 0 or (
                    last is not None and records.register_step_wh(last, record.begin_RV) < 0
                ):
                    problems.append(f"register went back at T{record.pagination}: {record.begin_RV} → {record.end_RV}")
                last = record.end_RV
        if value.get("verify") or value.get("billable"):
            key = meter.signer.public_key_hex
            for record in stored:
                problem = records.verification_problem(record.ocmf, key, billable=bool(value.get("billable")))
                if problem:
                    problems.append(f"T{record.pagination}: {problem}")
        if "reasons" in value:
            problems.extend(compare(value["reasons"], [r.reason for r in stored], "reasons"))
        if problems:
            shown = problems[:5] + ([f"... {len(problems) - 5} more"] if len(problems) > 5 else [])
            raise StepFailure(show(value), "; ".join(shown))

    async def _do_expect_meter(self, step: Step, value: dict[str, Any]) -> None:
        problems = compare(value, meter_view.snapshot(self.meter_slot.meter), "meter")
        if problems:
            raise StepFailure(show(value), "; ".join(problems))

    async def _do_expect_conformance(self, step: Step, value: dict[str, Any]) -> None:
        """The conformance report over the driver's traffic so far (docs/conformance.md), verdict per check."""
        until = self._scope(value["until"], "previous").sim_time if "until" in value else None
        try:
            report = build_report(attach(self.meter_slot.host), until)
        except WindowError as exc:
            raise StepFailure(f"a report with its window closed at {value['until']!r}", str(exc)) from None
        problems: list[str] = []
        if "verdict" in value:
            problems.extend(compare(value["verdict"], report["verdict"], "verdict"))
        checks = {check["id"]: check for check in report["checks"]}
        for check_id, want in value.get("checks", {}).items():
            check = checks[check_id]
            mismatch = compare(want, check["verdict"], check_id)
            if mismatch:
                problems.append(mismatch[0] + _check_story(check, self.scenario.epoch))
        if problems:
            worst = [f"{c['id']} {c['verdict']}" for c in report["checks"] if c["verdict"] in ("FAIL", "WARN")]
            overall = f"report {report['verdict']}" + (f": {', '.join(worst)}" if worst else "")
            raise StepFailure(show(value), "; ".join(problems) + f" ({overall})")

    async def _do_expect_published(self, step: Step, value: dict[str, Any]) -> None:
        scope = self._scope(value.get("since"), "start")
        published = [e for e in self.state.events if e.name == "published"]
        problems: list[str] = []
        field_checks = {key: value[key] for key in PUBLISHED_KEYS if key in value}
        if field_checks:
            if not published:
                problems.append("nothing was published")
            else:
                problems.extend(compare(field_checks, published_fields(published[-1].data), "published"))
        if "public_key" in value:
            keys = [e for e in self.state.events if e.name == "public_key"]
            want = (
                self.meter_slot.meter.signer.public_key_hex if value["public_key"] == "meter" else value["public_key"]
            )
            if not keys:
                problems.append("no public key was published")
            elif keys[-1].data != want:
                problems.append(f"public key {str(keys[-1].data)[:24]}... is not {want[:24]}...")
        in_scope = [e for e in self.state.events[scope.event_index :] if e.name == "published"]
        if "count" in value:
            problems.extend(compare(value["count"], len(in_scope), "publications"))
        if "interval" in value:
            low = parse_duration(value["interval"].get("min", "0s"))
            high = parse_duration(value["interval"]["max"]) if "max" in value["interval"] else float("inf")
            gaps = [b.time - a.time for a, b in itertools.pairwise(in_scope)]
            if not gaps:
                problems.append("fewer than two publications to measure an interval")
            bad = [gap for gap in gaps if not low - 1e-6 <= gap <= high + 1e-6]
            if bad:
                problems.append(
                    f"{len(bad)} of {len(gaps)} intervals outside [{low:g} s, {high:g} s], e.g. {bad[0]:g} s"
                )
        if problems:
            raise StepFailure(show(value), "; ".join(problems))

    async def _do_expect_errors(self, step: Step, value: dict[str, Any]) -> None:
        scope = self._scope(value.get("since"), "start")
        seen = self.state.events[scope.event_index :]
        problems: list[str] = []
        for key, event_name in (*FAULT_KINDS.items(), ("reinitialised", "reinitialising")):
            if key in value:
                count = sum(1 for e in seen if e.name == event_name)
                problems.extend(compare(value[key], count, f"{event_name} events"))
        warnings = [str(e.data) for e in seen if e.name == "warning"]
        for text in value.get("warnings", []):
            if not any(text in warning for warning in warnings):
                problems.append(f"no warning containing {text!r} (warnings: {show(warnings)})")
        if "warning_count" in value:
            problems.extend(compare(value["warning_count"], len(warnings), "warnings"))
        if "active" in value and self.drv.communication_fault_active != value["active"]:
            problems.append(f"CommunicationFault active is {self.drv.communication_fault_active}")
        if "initialised" in value and self.drv.initialised != value["initialised"]:
            problems.append(f"driver initialised is {self.drv.initialised}")
        if problems:
            raise StepFailure(show(value), "; ".join(problems) + "; " + self._recent_events(scope))

    async def _do_expect_requests(self, step: Step, value: Any) -> None:
        spec = {"match": value} if isinstance(value, list) else value
        scope = self._scope(spec.get("since"), "start")
        entries = self.meter_slot.host.journal.entries(since=scope.journal_seq)
        problems: list[str] = []
        if spec.get("match"):
            problem = match_subsequence(spec["match"], entries)
            if problem:
                problems.append(problem)
        for pattern in spec.get("absent", []):
            hits = [entry for entry in entries if not entry_problems(pattern, entry)]
            if hits:
                problems.append(
                    f"{describe_pattern(pattern)} should be absent, found {len(hits)}: "
                    + describe_entry(hits[0], self.scenario.epoch)
                )
        for counted in spec.get("counts", []):
            pattern = {k: v for k, v in counted.items() if k != "n"}
            hits = [entry for entry in entries if not entry_problems(pattern, entry)]
            problems.extend(compare(counted["n"], len(hits), f"count of {describe_pattern(pattern)}"))
        if problems:
            raise StepFailure(show(value), "; ".join(problems) + f" ({len(entries)} requests in scope)")

    # ---- failure stories -----------------------------------------------------------------------------

    def _failure(self, expected: str, got: str) -> Failure:
        step = self._current
        step_text = _step_text(step.raw) if step is not None else "(setting up the twin and the driver)"
        requests: list[str] = []
        if self.slot is not None:
            entries = self.slot.host.journal.entries()
            requests = [describe_entry(entry, self.scenario.epoch) for entry in entries[-STORY_REQUESTS:]]
        return Failure(self._current_label, step_text, expected, got, requests, step.note if step is not None else None)


def _step_text(raw: dict[str, Any]) -> str:
    shown = {key: value for key, value in raw.items() if key != "note"}
    text = yaml.safe_dump(shown, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text if len(text) <= 400 else text[:397] + "..."


def _check_story(check: dict[str, Any], origin: float) -> str:
    """What a check saw: its first finding, or how often its situation arose."""
    if not check["evidence"]:
        return f" (exercised {check['exercised']} times, no findings)"
    finding = check["evidence"][0]
    entry = finding.get("entry")
    body = "" if not entry or entry["body"] is None else " " + show(entry["body"])
    where = f"#{entry['seq']} {entry['method']} {entry['path']}{body} -> {entry['status']}: " if entry else ""
    more = f", {check['findings'] - 1} more" if check["findings"] > 1 else ""
    return f" ({finding['code']} at t+{finding['sim_time'] - origin:.3f}s: {where}{finding['message']}{more})"


def _response_summary(response: Any) -> dict[str, Any]:
    if response is None:
        return {}
    data: dict[str, Any] = {"status": response.status.value}
    if response.error:
        data["error"] = response.error
    signed = getattr(response, "signed_meter_value", None)
    if signed is not None:
        data["record"] = records.summary(signed.signed_meter_data)
    return data


async def run_scenario(scenario: Scenario) -> ScenarioResult:
    return await ScenarioRun(scenario).run()


async def run_all(scenarios: list[Scenario], limit: int = 4) -> list[ScenarioResult]:
    """Run scenarios concurrently (each with its own twin and clock), results in the given order."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(scenario: Scenario) -> ScenarioResult:
        async with gate:
            return await run_scenario(scenario)

    return list(await asyncio.gather(*(one(scenario) for scenario in scenarios)))
