"""Steps that change the world: the meter's inputs, power, faults and registers, the clock, the driver's commands.

Each handler gets the run (which owns the twin, the driver, the clock and the state) and the step, whose
``value`` the loader has checked against ``schema.json`` (scenarios/README.md has the reference). ``mark``
lives here too, though it observes: it names the present moment and, like a check, settles first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    TransactionReq,
)
from iemdcr_twin.simulator.clock import ClockError
from iemdcr_twin.simulator.network_faults import NetworkFaults, parse_rules
from iemdcr_twin.simulator.scenario.durations import parse_duration
from iemdcr_twin.simulator.scenario.expectations import check_response
from iemdcr_twin.simulator.scenario.results import StepFailure
from iemdcr_twin.simulator.scenario.steps import on

if TYPE_CHECKING:
    from iemdcr_twin.simulator.scenario.loader import Step
    from iemdcr_twin.simulator.scenario.runner import ScenarioRun

# A start's TransactionReq fields when the step leaves them out (evse_id is the driver's CI, transaction_id
# counts the run's starts): an RFID card the meter and pyocmf accept as billable.
START_DEFAULTS: dict[str, Any] = {
    "identification_status": "ASSIGNED",
    "identification_type": "ISO14443",
    "identification_flags": ["RFID_PLAIN"],
    "identification_level": "VERIFIED",
    "identification_data": "04A1B2C3",
}


@on("repeat")
async def repeat(run: ScenarioRun, step: Step) -> None:
    """``{times, steps}``: the nested steps, ``times`` times; labels gain ``[iteration i of n]``."""
    times = step.value["times"]
    for iteration in range(times):
        await run.run_steps(step.children, f" [iteration {iteration + 1} of {times}]")


@on("load")
async def load(run: ScenarioRun, step: Step) -> None:
    """``{current_A, voltage_V, ramp}``: the meter's electrical inputs (A, V; a duration to ramp over)."""
    value = step.value
    ramp = parse_duration(value["ramp"]) if "ramp" in value else 0.0
    run.meter_slot.meter.set_load(value.get("current_A"), value.get("voltage_V"), ramp)


@on("power")
async def power(run: ScenarioRun, step: Step) -> None:
    """``off``/``on`` (YAML 1.1 reads them as booleans, both accepted), ``cycle`` or ``{cycle: DURATION}``."""
    value = step.value
    twin, serial = run.twin, run.meter_slot.meter.serial
    assert twin is not None
    with run.clock.hold():
        if isinstance(value, bool) or value in ("off", "on"):
            await twin.set_power(serial, value in (True, "on"))
        elif value == "cycle":
            await twin.power_cycle(serial, 0.0)
        else:
            await twin.power_cycle(serial, parse_duration(value["cycle"]))


@on("fault")
async def fault(run: ScenarioRun, step: Step) -> None:
    """``{raise: NAME}``, ``{clear: NAME or all}`` (meter-api.md §3.8), ``{network: RULES or clear, seed}``
    (control-api.md §2)."""
    value = step.value
    meter = run.meter_slot.meter
    if "raise" in value:
        meter.raise_fault(value["raise"])
    if "clear" in value:
        for name in sorted(meter.faults) if value["clear"] == "all" else [value["clear"]]:
            meter.clear_fault(name)
    if "network" in value:
        faults = NetworkFaults.of(run.meter_slot.host)
        if value["network"] == "clear":
            faults.clear()
        else:
            seed, rules = parse_rules({"seed": value.get("seed", 0), "rules": value["network"]})
            faults.replace(seed, rules)


@on("profile")
async def profile(run: ScenarioRun, step: Step) -> None:
    """``{SWITCH: value}``: firmware switches of meter-api.md §6, mid-run."""
    run.meter_slot.meter.set_switches(step.value)


@on("registers")
async def registers(run: ScenarioRun, step: Step) -> None:
    """``{import_mWh, export_mWh}``: the absolute registers in whole mWh (refused during a transaction)."""
    run.meter_slot.meter.set_registers(step.value.get("import_mWh"), step.value.get("export_mWh"))


@contextlib.contextmanager
def _clock_step(duration: str) -> Iterator[None]:
    """A clock's refusal (``ClockError``: past the last time a meter can show, ``SimClock.check_reach``) as the
    step's failure, said at once rather than as a wait no jump can end."""
    try:
        yield
    except ClockError as exc:
        raise StepFailure(f"the clock to move {duration} on", str(exc)) from None


async def _advance(run: ScenarioRun, duration: str) -> None:
    with _clock_step(duration):
        run.clock.advance(parse_duration(duration))
    await run.clock.settle()


async def _wait(run: ScenarioRun, duration: str) -> None:
    seconds = parse_duration(duration)
    with _clock_step(duration):
        run.clock.check_reach(seconds)
    await run.clock.sleep(seconds)


@on("advance")
async def advance(run: ScenarioRun, step: Step) -> None:
    """``DURATION``: jump the clock (the driver wakes once), then settle."""
    await _advance(run, step.value)


@on("wait")
async def wait(run: ScenarioRun, step: Step) -> None:
    """``DURATION``: let simulated time pass with everything running."""
    await _wait(run, step.value)


@on("clock")
async def clock(run: ScenarioRun, step: Step) -> None:
    """``{advance: DURATION}`` or ``{wait: DURATION}``: the two steps above as one kind."""
    if "advance" in step.value:
        await _advance(run, step.value["advance"])
    else:
        await _wait(run, step.value["wait"])


@on("mark", check=True)
async def mark(run: ScenarioRun, step: Step) -> None:
    """``NAME``: this moment (journal, events, time), for a later ``since:`` or ``until:``."""
    run.state.marks[step.value] = run.here()


@on("restart_driver")
async def restart_driver(run: ScenarioRun, step: Step) -> None:
    """``{CONFIG CHANGES}`` or nothing: a new driver with the changed config; the meter keeps running."""
    await run.restart_driver(step.value or {})


@on("start")
async def start(run: ScenarioRun, step: Step) -> None:
    """``{TransactionReq fields}`` (defaults: START_DEFAULTS, evse_id = CI, transaction_id ``tx-0001``...):
    the driver's ``start_transaction``; an ``expect`` on the step checks the response."""
    run.state.starts += 1
    fields = {
        "evse_id": run.evse_id,
        "transaction_id": f"tx-{run.state.starts:04d}",
        **START_DEFAULTS,
        **step.value,
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
    run.state.response = await run.drv.start_transaction(request)
    if step.expect is not None:
        check_response(run, step.expect)


@on("stop")
async def stop(run: ScenarioRun, step: Step) -> None:
    """``{transaction_id}`` or nothing: the driver's ``stop_transaction``; ``expect`` checks the response."""
    run.state.response = await run.drv.stop_transaction((step.value or {}).get("transaction_id", ""))
    if step.expect is not None:
        check_response(run, step.expect)
