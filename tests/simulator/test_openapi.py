"""OpenAPI 3.1 documents: every route the apps register is described, and nothing else is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import iemdcr_twin.simulator
from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.control.openapi import (
    CATALOGUE,
    METER_DOCUMENT,
    app_routes,
    control_document,
    operation_keys,
)
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.meter_api import create_meter_app
from tests.simulator.twin_helpers import S1, json_ok, new_twin

Client = TestClient[Any, Any]
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


@pytest.fixture
def twin() -> Twin:
    return new_twin()


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_the_catalogue_and_the_control_app_have_exactly_the_same_routes(twin: Twin) -> None:
    """Every shipped route is served and described: a route dropped from the app fails here, not silently
    disappearing from the served document (which keeps only the routes the app registers)."""
    routes = app_routes(create_control_app(twin))
    assert routes - operation_keys() == set(), "add these routes to simulator/openapi.py CATALOGUE"
    assert operation_keys() - routes == set(), "the app no longer serves these documented routes"
    assert len(CATALOGUE) == len(operation_keys())  # no operation described twice


def test_guarded_operations_document_403_and_bodies_415() -> None:
    """control-api.md §2: a foreign Host or Origin is 403 everywhere but /healthz; a non-JSON body is 415."""
    for path, item in control_document()["paths"].items():
        for method, operation in item.items():
            assert ("403" in operation["responses"]) == (path != "/healthz"), (method, path)
            assert ("415" in operation["responses"]) == ("requestBody" in operation), (method, path)


async def test_served_control_document_matches_the_app_exactly(control: Client) -> None:
    document = await json_ok(await control.get("/api/openapi.json"))
    assert document["openapi"] == "3.1.0"
    assert described(document) == app_routes(control.app)
    network = document["paths"]["/api/meters/{serial}/network"]["put"]
    body = network["requestBody"]["content"]["application/json"]["schema"]  # the schema the server validates with
    assert body == {"$ref": "#/components/schemas/NetworkRules"}
    assert document["components"]["schemas"]["NetworkRules"]["required"] == ["rules"]
    assert {p["name"] for p in network["parameters"]} == {"serial"}
    assert "401" in network["responses"] and "404" in network["responses"]
    assert document["paths"]["/healthz"]["get"]["security"] == []


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for item in control_document()["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_meter_document_describes_exactly_the_meter_app(twin: Twin) -> None:
    document = json.loads((Path(iemdcr_twin.simulator.__file__).parent / METER_DOCUMENT).read_text(encoding="utf-8"))
    assert document["openapi"] == "3.1.0"
    slot = twin.slot(S1)
    app = create_meter_app(MeterHost(slot.meter, twin.clock, Journal(10)))
    assert described(document) == app_routes(app)
    refs = json.dumps(document).split('"$ref": "#/components/schemas/')[1:]
    assert {ref.split('"')[0] for ref in refs} <= set(document["components"]["schemas"])


async def test_meter_document_is_served(control: Client) -> None:
    document = await json_ok(await control.get("/api/openapi-meter.json"))
    assert "/counter/v1/ocmf/receipt" in document["paths"]
