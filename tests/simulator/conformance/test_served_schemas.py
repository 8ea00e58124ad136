"""Every JSON answer of a control GET validates against the served /api/openapi.json (refs resolved in it)."""

from __future__ import annotations

from typing import Any

import jsonschema

from tests.support.lab import SERIAL, Lab, check_of


async def served_document(lab: Lab) -> dict[str, Any]:
    document: dict[str, Any] = await lab.control_ok("GET", "/api/openapi.json")
    return document


def errors_against(document: dict[str, Any], path: str, answer: Any) -> list[str]:
    """The validation errors of ``answer`` against the 200 JSON schema the document gives ``GET path``."""
    schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    rooted = {**schema, "components": document["components"]}
    validator = jsonschema.Draft202012Validator(rooted)
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(answer)]


async def test_a_report_with_evidence_validates_against_the_served_document(lab: Lab) -> None:
    await lab.control_ok("PATCH", f"/api/meters/{SERIAL}/profile", {"require_gw_for_transaction": False})
    assert await lab.post("receipt", {"TX": "B"}) == 200  # a begin before any gw: findings with evidence
    report = await lab.report()
    evidence = check_of(report, "gw_before_transaction")["evidence"]
    assert evidence and evidence[0]["entry"] is not None
    document = await served_document(lab)
    assert errors_against(document, "/api/meters/{serial}/conformance", report) == []


async def test_every_json_get_answer_validates_against_the_served_document(lab: Lab) -> None:
    await lab.init()
    await lab.charge()
    document = await served_document(lab)
    answers = {
        "/healthz": "/healthz",
        "/api/meters": "/api/meters",
        "/api/meters/{serial}": f"/api/meters/{SERIAL}",
        "/api/faults": "/api/faults",
        "/api/meters/{serial}/network": f"/api/meters/{SERIAL}/network",
        "/api/meters/{serial}/next-record": f"/api/meters/{SERIAL}/next-record",
        "/api/clock": "/api/clock",
        "/api/meters/{serial}/journal": f"/api/meters/{SERIAL}/journal",
        "/api/meters/{serial}/records": f"/api/meters/{SERIAL}/records",
    }
    for path, url in answers.items():
        answer = await lab.control_ok("GET", url)
        assert answer, path
        assert errors_against(document, path, answer) == [], path
    journal = await lab.control_ok("GET", f"/api/meters/{SERIAL}/journal")
    assert journal["entries"], "the journal answer was checked with entries in it"
    records = await lab.control_ok("GET", f"/api/meters/{SERIAL}/records")
    assert records["records"], "the records answer was checked with a record in it"
