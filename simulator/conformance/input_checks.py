"""WARN checks: values the charger fed the driver, which the meter stores faithfully but verifiers dislike."""

from __future__ import annotations

from typing import ClassVar

from iemdcr_twin.simulator.conformance import charger_inputs
from iemdcr_twin.simulator.conformance.checks import Check
from iemdcr_twin.simulator.conformance.situation import Situation, body_dict, is_post, ok
from iemdcr_twin.simulator.conformance.verdicts import Verdict
from iemdcr_twin.simulator.journal import JournalEntry


class _InputCheck(Check):
    severity = Verdict.WARN
    node: ClassVar[str]
    code: ClassVar[str]

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if not (is_post(entry, self.node) and ok(entry)):
            return
        self.state.exercised += 1
        for problem in self.problems(body_dict(entry)):
            self.found(self.code, problem, entry)

    def problems(self, body: dict[str, object]) -> list[str]:
        raise NotImplementedError


class ChargePointType(_InputCheck):
    id = "charge_point_type"
    title = "CT is EVSEID or CBIDC"
    node = "gw"
    code = "ct_not_ocmf"

    def problems(self, body: dict[str, object]) -> list[str]:
        problem = charger_inputs.ct_problem(body.get("CT"))
        return [problem] if problem else []


class IdentificationFormat(_InputCheck):
    id = "identification_format"
    title = "IT/ID pair accepted by strict OCMF verifiers"
    node = "user"
    code = "id_format"

    def problems(self, body: dict[str, object]) -> list[str]:
        problem = charger_inputs.id_problem(body.get("IT"), body.get("ID"))
        return [problem] if problem else []


class IdentificationLevel(_InputCheck):
    id = "identification_level"
    title = "IL is not an error level (MISMATCH, INVALID, OUTDATED, UNKNOWN): records billable"
    node = "user"
    code = "il_not_billable"

    def problems(self, body: dict[str, object]) -> list[str]:
        problem = charger_inputs.level_problem(body.get("IL"))
        return [problem] if problem else []


class OcmfEnums(_InputCheck):
    id = "ocmf_enum_values"
    title = "IL, IF and IT are values the OCMF specification defines"
    node = "user"
    code = "unknown_enum"

    def problems(self, body: dict[str, object]) -> list[str]:
        return charger_inputs.enum_problems(body)


INPUT_CHECKS: list[type[Check]] = [ChargePointType, IdentificationFormat, IdentificationLevel, OcmfEnums]
