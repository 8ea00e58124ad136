"""Checks on signed OCMF records with the independent verifier (pyocmf), as ocmf.md §4 defines them."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from pyocmf import OCMF

from iemdcr_twin.simulator.model.energy import REGISTER_WRAP_MWH, register_delta
from iemdcr_twin.simulator.scenario.matching import compare, show


def payload(record: str) -> dict[str, Any]:
    """The payload section as JSON (between the first and second ``|``)."""
    parts = record.split("|")
    if len(parts) < 3 or parts[0] != "OCMF":
        raise ValueError(f"not an OCMF record: {record[:80]!r}")
    data = json.loads(parts[1])
    if not isinstance(data, dict):
        raise ValueError("the OCMF payload is not a JSON object")
    return data


def verification_problem(record: str, public_key_hex: str, *, billable: bool) -> str | None:
    """None when pyocmf strict-parses it and the signature is True (and, if billable, Eichrecht is clean)."""
    try:
        parsed = OCMF.from_string(record, strict=True)
    except Exception as exc:
        return f"pyocmf strict parse failed: {exc}"
    try:
        signature_ok = parsed.verify_signature(public_key_hex)
    except Exception as exc:
        return f"pyocmf verify_signature raised {type(exc).__name__}: {exc}"
    if signature_ok is not True:
        return f"pyocmf verify_signature returned {signature_ok!r}"
    if billable:
        issues = parsed.check_eichrecht(errors_only=True)
        if issues:
            return "pyocmf check_eichrecht errors: " + "; ".join(str(issue) for issue in issues)
    return None


def register_step_wh(begin_kwh: str, end_kwh: str) -> float:
    """End minus begin of two register readings (kWh strings), in Wh, across the register's wrap too.

    The register has 8 integer digits of kWh and wraps to zero after ``99999999.999`` (meter-api.md §3.4), so
    ``99999990.000`` to ``00000010.000`` is +20,000 Wh; a step back stays negative (``model.energy.register_delta``).
    """
    begin, end = Decimal(begin_kwh) * 1000, Decimal(end_kwh) * 1000
    if begin != begin.to_integral_value() or end != end.to_integral_value():  # finer than the display: as is
        return float(end - begin)
    return float(register_delta(int(begin), int(end), REGISTER_WRAP_MWH // 1000))


def energy_wh(data: dict[str, Any]) -> float:
    """End RV minus begin RV of the record's readings, in Wh (across a register wrap too)."""
    readings = data.get("RD") or []
    if len(readings) < 2:
        raise ValueError("the record has fewer than two readings")
    try:
        return register_step_wh(str(readings[0]["RV"]), str(readings[-1]["RV"]))
    except (KeyError, InvalidOperation) as exc:
        raise ValueError(f"RV missing or not a number: {exc}") from None


def pagination(data: dict[str, Any]) -> int:
    """The number of a payload's PG ``T<n>`` (ocmf.md); ValueError for anything else."""
    text = str(data.get("PG", ""))
    if not text.startswith("T") or not (text[1:].isascii() and text[1:].isdigit()):
        raise ValueError(f"PG {text!r} is not T<n>")
    return int(text[1:])


def record_problems(
    expected: dict[str, Any], record: str, public_key_hex: str, previous_pg: int | None
) -> tuple[list[str], int | None]:
    """Mismatches between an expect_record block and ``record``, and the record's PG (for ``next``)."""
    problems: list[str] = []
    try:
        data = payload(record)
    except ValueError as exc:
        return [str(exc)], None
    pg: int | None
    try:
        pg = pagination(data)
    except ValueError as exc:
        problems.append(str(exc))
        pg = None
    for key, billable in (("verifies", False), ("billable", True)):  # each on its own: verifies, not billable
        if key not in expected:
            continue
        problem = verification_problem(record, public_key_hex, billable=billable)
        if expected[key] and problem:
            if problem not in problems:  # a record that does not verify is not billable either: say it once
                problems.append(problem)
        elif not expected[key] and problem is None:
            what = "be billable" if billable else "verify"
            problems.append(f"the record was expected not to {what}, but pyocmf accepts it")
    if "pagination" in expected and pg is not None:
        want = expected["pagination"]
        if want in ("next", "same"):
            if previous_pg is None:
                problems.append(f"pagination: {want} needs an earlier checked record")
            elif pg != previous_pg + (1 if want == "next" else 0):
                problems.append(f"PG: expected T{previous_pg + (1 if want == 'next' else 0)} ({want}), got T{pg}")
        else:
            number = want if isinstance(want, int) else int(str(want)[1:])
            if pg != number:
                problems.append(f"PG: expected T{number}, got T{pg}")
    readings = data.get("RD") or [{}]
    if "reason" in expected:
        problems.extend(compare(expected["reason"], readings[-1].get("TX"), "reason (end TX)"))
    if "energy_Wh" in expected:
        try:
            problems.extend(compare(expected["energy_Wh"], energy_wh(data), "energy_Wh"))
        except ValueError as exc:
            problems.append(f"energy_Wh: {exc}")
    if "fields" in expected:
        problems.extend(compare(expected["fields"], data, "payload"))
    if "begin" in expected:
        problems.extend(compare(expected["begin"], readings[0], "begin reading"))
    if "end" in expected:
        problems.extend(compare(expected["end"], readings[-1], "end reading"))
    return problems, pg


def summary(record: str) -> str:
    """``PG T3 CI ... ID ... B@00000001.000/G E@...``: a record in one line for stories (the raw text if unparsable)."""
    try:
        data = payload(record)
    except ValueError:
        return show(record)
    readings = data.get("RD") or []
    ends = " ".join(f"{r.get('TX')}@{r.get('RV')}/{r.get('ST')}" for r in readings)
    return f"PG {data.get('PG')} CI {data.get('CI')} ID {data.get('ID')} {ends}"
