"""Steps that compare: the driver's responses and events, the requests on the wire, the records, the meter's state.

Each check raises ``StepFailure(expected, got)`` when it does not hold. Events carry the driver's names
(``iemdcr_twin.driver.events``: ``powermeter``, ``public_key_ocmf``, ``communication_fault_raised``...), and
a published Powermeter is compared flattened to its DC fields (``powermeter_fields``). Records are judged with
pyocmf (``records``, ocmf.md §4); the conformance report is docs/conformance.md's. Reference: scenarios/README.md.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from iemdcr_twin.driver.events import (
    COMMUNICATION_FAULT_CLEARED,
    COMMUNICATION_FAULT_RAISED,
    POWERMETER,
    PUBLIC_KEY_OCMF,
    REINITIALISING,
    TRANSACTION_ENDED,
    WARNING,
)
from iemdcr_twin.driver.types import Powermeter, TransactionStopResponse
from iemdcr_twin.simulator.conformance import WindowError, attach, build_report
from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.scenario import records
from iemdcr_twin.simulator.scenario.durations import parse_duration
from iemdcr_twin.simulator.scenario.matching import (
    compare,
    describe_entry,
    describe_pattern,
    entry_problems,
    match_subsequence,
    show,
)
from iemdcr_twin.simulator.scenario.results import StepFailure
from iemdcr_twin.simulator.scenario.steps import on

if TYPE_CHECKING:
    from iemdcr_twin.simulator.scenario.loader import Step
    from iemdcr_twin.simulator.scenario.runner import ScenarioRun, Scope, Seen

DEFAULT_WAIT_TIMEOUT = "60s"
# The flattened Powermeter (powermeter.yaml): current_A.DC, voltage_V.DC, power_W.total, energy_Wh_*.total.
POWERMETER_FIELDS = (
    "current_A",
    "voltage_V",
    "power_W",
    "energy_Wh_import",
    "energy_Wh_export",
    "meter_id",
    "timestamp",
)
# expect_errors counts these events under their own names.
COUNTED_EVENTS = (COMMUNICATION_FAULT_RAISED, COMMUNICATION_FAULT_CLEARED, REINITIALISING)


def powermeter_fields(powermeter: Powermeter) -> dict[str, Any]:
    """A Powermeter flattened to ``POWERMETER_FIELDS`` (A, V, W, Wh; None where the driver left a field out)."""
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


# ---- the start/stop response and records ---------------------------------------------------------------------


def response_summary(response: Any) -> dict[str, Any]:
    """``{status, error?, record?}`` of a start/stop response ({} for None), the record as ``records.summary``."""
    if response is None:
        return {}
    data: dict[str, Any] = {"status": response.status.value}
    if response.error:
        data["error"] = response.error
    signed = getattr(response, "signed_meter_value", None)
    if signed is not None:
        data["record"] = records.summary(signed.signed_meter_data)
    return data


def check_response(run: ScenarioRun, expect: dict[str, Any]) -> None:
    """The last start/stop response against ``{status, error, no_error, record, no_record}``."""
    response = run.state.response
    if response is None:
        raise StepFailure("a start/stop response", "none")
    got = show(response_summary(response))
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
            problems.extend(record_check(run, expect["record"], signed.signed_meter_data, signed.public_key))
    if problems:
        raise StepFailure(show(expect), "; ".join(problems) + f" - response: {got}")


def record_check(run: ScenarioRun, expected: dict[str, Any], record: str, sent_key: str | None) -> list[str]:
    """What differs between ``expected`` (an expect_record block) and an OCMF record; remembers its PG."""
    meter_key = run.meter_slot.meter.signer.public_key_hex
    problems, pg = records.record_problems(expected, record, meter_key, run.state.last_pg)
    if expected.get("public_key") == "meter" and sent_key != meter_key:
        problems.append(f"public_key {str(sent_key)[:24]}... is not the meter's {meter_key[:24]}...")
    if pg is not None:
        run.state.last_pg = pg
    if problems:
        problems.append("record: " + records.summary(record))
    return problems


@on("expect", check=True)
async def expect(run: ScenarioRun, step: Step) -> None:
    """``{status, error, no_error, record, no_record}``: the previous start/stop response."""
    check_response(run, step.value)


@on("expect_record", check=True)
async def expect_record(run: ScenarioRun, step: Step) -> None:
    """``{source, index, verifies, billable, pagination, reason, energy_Wh, fields, begin, end, public_key}``:
    the last response's record (``source: response``, the default) or one stored on the meter."""
    value = step.value
    if value.get("source", "response") == "meter":
        stored = run.meter_slot.meter.records
        index = value.get("index", -1)
        if not stored or not -len(stored) <= index < len(stored):
            raise StepFailure(f"a stored record at index {index}", f"{len(stored)} records on the meter")
        problems = record_check(run, value, stored[index].ocmf, None)
    else:
        response = run.state.response
        signed = getattr(response, "signed_meter_value", None)
        if signed is None:
            raise StepFailure("a record in the last stop response", show(response_summary(response)))
        problems = record_check(run, value, signed.signed_meter_data, signed.public_key)
    if problems:
        raise StepFailure(show(value), "; ".join(problems))


@on("expect_records", check=True)
async def expect_records(run: ScenarioRun, step: Step) -> None:
    """``{count, continuous, monotonic, verify, billable, reasons}`` over every record the meter signed."""
    value = step.value
    meter = run.meter_slot.meter
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


# ---- the meter, the wire, the conformance report ------------------------------------------------------------


@on("expect_meter", check=True)
async def expect_meter(run: ScenarioRun, step: Step) -> None:
    """``{...}``: a subset of the meter's state (the control API's ``GET /api/meters/{serial}``)."""
    problems = compare(step.value, view.snapshot(run.meter_slot.meter), "meter")
    if problems:
        raise StepFailure(show(step.value), "; ".join(problems))


@on("expect_requests", check=True)
async def expect_requests(run: ScenarioRun, step: Step) -> None:
    """``[PATTERNS]`` or ``{since, match, absent, counts}``: the journal since a mark (default: the start)."""
    value = step.value
    spec: dict[str, Any] = {"match": value} if isinstance(value, list) else value
    scope = run.scope(spec.get("since"), "start")
    entries = run.meter_slot.host.journal.entries(since=scope.journal_seq)
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
                + describe_entry(hits[0], run.scenario.epoch)
            )
    for counted in spec.get("counts", []):
        pattern = {k: v for k, v in counted.items() if k != "n"}
        hits = [entry for entry in entries if not entry_problems(pattern, entry)]
        problems.extend(compare(counted["n"], len(hits), f"count of {describe_pattern(pattern)}"))
    if problems:
        raise StepFailure(show(value), "; ".join(problems) + f" ({len(entries)} requests in scope)")


@on("expect_conformance", check=True)
async def expect_conformance(run: ScenarioRun, step: Step) -> None:
    """``{verdict, checks, until}``: the conformance report over the driver's traffic so far
    (docs/conformance.md), the overall verdict and a verdict per check id."""
    value = step.value
    until = run.scope(value["until"], "previous").sim_time if "until" in value else None
    try:
        report = build_report(attach(run.meter_slot.host), until)
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
            problems.append(mismatch[0] + check_story(check, run.scenario.epoch))
    if problems:
        worst = [f"{c['id']} {c['verdict']}" for c in report["checks"] if c["verdict"] in ("FAIL", "WARN")]
        overall = f"report {report['verdict']}" + (f": {', '.join(worst)}" if worst else "")
        raise StepFailure(show(value), "; ".join(problems) + f" ({overall})")


def check_story(check: dict[str, Any], origin: float) -> str:
    """What a conformance check saw: its first finding, or how often its situation arose."""
    if not check["evidence"]:
        return f" (exercised {check['exercised']} times, no findings)"
    finding = check["evidence"][0]
    entry = finding.get("entry")
    body = "" if not entry or entry["body"] is None else " " + show(entry["body"])
    where = f"#{entry['seq']} {entry['method']} {entry['path']}{body} -> {entry['status']}: " if entry else ""
    more = f", {check['findings'] - 1} more" if check["findings"] > 1 else ""
    return f" ({finding['code']} at t+{finding['sim_time'] - origin:.3f}s: {where}{finding['message']}{more})"


# ---- the driver's events ---------------------------------------------------------------------------------------


@on("wait_for", check=True, settle=False)
async def wait_for(run: ScenarioRun, step: Step) -> None:
    """``{event, timeout, where, record, message, count, since, elapsed_s}``: the ``count``-th driver event
    ``event`` since the scope (default: the previous action step) within ``timeout`` of simulated time."""
    value = step.value
    name = value["event"]
    scope = run.scope(value.get("since"), "previous")
    deadline = run.clock.now() + parse_duration(value.get("timeout", DEFAULT_WAIT_TIMEOUT))
    wanted = int(value.get("count", 1))
    settled = False
    while True:
        found = [e for e in run.state.events[scope.event_index :] if e.name == name and event_ok(run, e, value)]
        if len(found) >= wanted:
            event = found[wanted - 1]
            if "elapsed_s" in value:
                problems = compare(value["elapsed_s"], event.time - scope.sim_time, "elapsed_s")
                if problems:
                    raise StepFailure(f"{name} after {show(value['elapsed_s'])} s", "; ".join(problems))
            return
        if run.clock.now() >= deadline:
            if not settled:  # something due at the deadline itself gets its chance
                settled = True
                await run.clock.settle()
                continue
            raise StepFailure(
                describe_wait(value, wanted),
                f"not within {value.get('timeout', DEFAULT_WAIT_TIMEOUT)} of simulated time; "
                + recent_events(run, scope),
            )
        await run.something_happens()


def event_ok(run: ScenarioRun, event: Seen, value: dict[str, Any]) -> bool:
    """Whether an event of the awaited name meets the step's ``record``, ``where`` or ``message``."""
    if "record" in value:  # transaction_ended: the record it carries (driver fix 16)
        signed = getattr(event.data, "signed_meter_value", None)
        if signed is None:
            return False
        problems = record_check(run, value["record"], signed.signed_meter_data, signed.public_key)
        if problems:
            raise StepFailure(show(value), "; ".join(problems))
        return True
    if "where" in value:
        if not isinstance(event.data, Powermeter):
            return False
        fields = powermeter_fields(event.data)
        return all(not compare(want, fields.get(key), key) for key, want in value["where"].items())
    if "message" in value:
        return isinstance(event.data, str) and value["message"] in event.data
    return True


def describe_wait(value: dict[str, Any], wanted: int) -> str:
    """``event powermeter (occurrence 3) where {...}``: what a wait_for waited for."""
    text = f"event {value['event']}"
    if wanted > 1:
        text += f" (occurrence {wanted})"
    if "where" in value:
        text += f" where {show(value['where'])}"
    if "message" in value:
        text += f" with message containing {value['message']!r}"
    return text


def recent_events(run: ScenarioRun, scope: Scope) -> str:
    """The last five events since ``scope`` other than ``powermeter``, then how many Powermeters came."""
    seen = run.state.events[scope.event_index :]
    if not seen:
        return "no driver events since then"
    shown = [describe_event(e, run.scenario.epoch) for e in seen if e.name != POWERMETER][-5:]
    published = [e for e in seen if e.name == POWERMETER]
    if published:
        shown.append(f"{len(published)} x {POWERMETER}, last {show(powermeter_fields(published[-1].data))}")
    return "driver events: " + "; ".join(shown)


def describe_event(event: Seen, origin: float) -> str:
    """``t+12.000s powermeter {...}``: one event for a failure story, time from ``origin``."""
    at = f"t+{event.time - origin:.3f}s"
    if event.name == POWERMETER:
        return f"{at} {POWERMETER} {show(powermeter_fields(event.data))}"
    if event.name == PUBLIC_KEY_OCMF:
        return f"{at} {PUBLIC_KEY_OCMF} {str(event.data)[:16]}..."
    if event.name == TRANSACTION_ENDED:
        return f"{at} {TRANSACTION_ENDED} ({records.summary(event.data.signed_meter_value.signed_meter_data)})"
    return f"{at} {event.name}" + (f" ({event.data})" if event.data else "")


@on("expect_published", check=True)
async def expect_published(run: ScenarioRun, step: Step) -> None:
    """``{POWERMETER_FIELDS: expected, public_key_ocmf, count, interval, since}``: the last ``powermeter``
    flattened, the last ``public_key_ocmf`` (``meter`` = the meter's key), and how many ``powermeter`` events
    came since the scope (default: the start) and how far apart (``interval: {min, max}`` durations)."""
    value = step.value
    scope = run.scope(value.get("since"), "start")
    published = [e for e in run.state.events if e.name == POWERMETER]
    problems: list[str] = []
    field_checks = {key: value[key] for key in POWERMETER_FIELDS if key in value}
    if field_checks:
        if not published:
            problems.append("nothing was published")
        else:
            problems.extend(compare(field_checks, powermeter_fields(published[-1].data), POWERMETER))
    if PUBLIC_KEY_OCMF in value:
        keys = [e for e in run.state.events if e.name == PUBLIC_KEY_OCMF]
        meter_key = run.meter_slot.meter.signer.public_key_hex
        want = meter_key if value[PUBLIC_KEY_OCMF] == "meter" else value[PUBLIC_KEY_OCMF]
        if not keys:
            problems.append(f"no {PUBLIC_KEY_OCMF} was published")
        elif keys[-1].data != want:
            problems.append(f"{PUBLIC_KEY_OCMF} {str(keys[-1].data)[:24]}... is not {want[:24]}...")
    in_scope = [e for e in run.state.events[scope.event_index :] if e.name == POWERMETER]
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
            problems.append(f"{len(bad)} of {len(gaps)} intervals outside [{low:g} s, {high:g} s], e.g. {bad[0]:g} s")
    if problems:
        raise StepFailure(show(value), "; ".join(problems))


@on("expect_errors", check=True)
async def expect_errors(run: ScenarioRun, step: Step) -> None:
    """``{communication_fault_raised, communication_fault_cleared, reinitialising, warnings, warning_count,
    communication_fault_active, initialised, since}``: event counts since the scope (default: the start),
    warnings containing each text, and the driver's state now."""
    value = step.value
    scope = run.scope(value.get("since"), "start")
    seen = run.state.events[scope.event_index :]
    problems: list[str] = []
    for name in COUNTED_EVENTS:
        if name in value:
            count = sum(1 for e in seen if e.name == name)
            problems.extend(compare(value[name], count, f"{name} events"))
    warnings = [str(e.data) for e in seen if e.name == WARNING]
    for text in value.get("warnings", []):
        if not any(text in warning for warning in warnings):
            problems.append(f"no warning containing {text!r} (warnings: {show(warnings)})")
    if "warning_count" in value:
        problems.extend(compare(value["warning_count"], len(warnings), "warnings"))
    active, initialised = run.drv.communication_fault_active, run.drv.initialised
    if "communication_fault_active" in value and active != value["communication_fault_active"]:
        problems.append(f"driver communication_fault_active is {active}")
    if "initialised" in value and initialised != value["initialised"]:
        problems.append(f"driver initialised is {initialised}")
    if problems:
        raise StepFailure(show(value), "; ".join(problems) + "; " + recent_events(run, scope))
