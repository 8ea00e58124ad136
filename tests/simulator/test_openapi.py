"""OpenAPI 3.1 documents: every route the apps register is described, and nothing else is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import iemdcr_twin.simulator
from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.control.openapi import (
    CATALOGUE,
    METER_DOCUMENT,
    RESPONSES,
    app_routes,
    control_document,
    meter_document,
    operation_keys,
)
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.meter_api import create_meter_app
from iemdcr_twin.simulator.model import Refusal, requests
from iemdcr_twin.simulator.model.faults import BY_NAME
from iemdcr_twin.simulator.model.faults import CATALOGUE as FAULTS
from iemdcr_twin.simulator.network_faults import ACTIONS
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS
from iemdcr_twin.simulator.schemas import CONTROL_BODIES, ecma_regex, public
from tests.support.http import json_ok
from tests.support.twin import S1, new_twin

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


def test_guarded_operations_document_403_and_bodies_408_and_415() -> None:
    """control-api.md §2: a foreign Host or Origin is 403 everywhere but /healthz; a non-JSON body is 415, a body
    that stops arriving 408."""
    for path, item in control_document()["paths"].items():
        for method, operation in item.items():
            assert ("403" in operation["responses"]) == (path != "/healthz"), (method, path)
            assert ("415" in operation["responses"]) == ("requestBody" in operation), (method, path)
            assert ("408" in operation["responses"]) == ("requestBody" in operation), (method, path)


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


# ---- the documents state what the server enforces (issue 12 item 9) ---------------------------------------


def object_schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object of a document that is typed ``object`` (alone or among other types)."""
    if isinstance(node, dict):
        types = node.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            yield where, node
        for key, value in node.items():
            yield from object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from object_schemas(item, f"{where}/{index}")


SHAPED = ("properties", "additionalProperties", "patternProperties", "$ref")


async def test_neither_document_has_a_bare_object_schema(control: Client) -> None:
    """A bare ``{"type": "object"}`` says nothing of what the server takes or answers."""
    for path in ("/api/openapi.json", "/api/openapi-meter.json"):
        document = await json_ok(await control.get(path))
        bare = [where for where, schema in object_schemas(document) if not any(key in schema for key in SHAPED)]
        assert bare == [], (path, bare)
        assert len(list(object_schemas(document))) > 10


async def test_every_json_answer_has_a_schema_of_its_own(control: Client) -> None:
    document = await json_ok(await control.get("/api/openapi.json"))
    schemas_ = document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media, content in response["content"].items():
                    ref = content["schema"].get("$ref", "")
                    if media == "application/json":
                        assert ref.removeprefix("#/components/schemas/") in schemas_, (method, path, status)


def test_request_bodies_are_the_schemas_the_server_validates_with() -> None:
    document = control_document()
    components = document["components"]["schemas"]
    assert set(CONTROL_BODIES).isdisjoint(RESPONSES)  # one name, one schema
    for name, body in CONTROL_BODIES.items():
        assert components[name] == public(body)
    bodies = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for item in document["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    assert bodies == set(CONTROL_BODIES)


def test_enums_name_what_the_server_takes() -> None:
    document = control_document()
    components = document["components"]["schemas"]
    fault = document["paths"]["/api/meters/{serial}/faults/{name}"]["put"]["parameters"][1]
    assert fault["schema"]["enum"] == [f.name for f in FAULTS] == list(BY_NAME)
    rule = components["NetworkRules"]["properties"]["rules"]["items"]
    assert rule["properties"]["action"]["enum"] == list(ACTIONS)
    assert components["NextRecord"]["properties"]["kind"]["enum"] == list(FAULTY_RECORD_KINDS)
    assert components["ClockSetting"]["properties"]["mode"]["enum"] == ["real", "virtual", None]
    assert components["Switches"]["properties"]["signature_encoding"]["enum"] == ["der", "raw"]
    records = document["paths"]["/api/meters/{serial}/records"]["get"]
    assert {p["name"]: p["schema"] for p in records["parameters"]}["format"]["enum"] == ["json", "safe-xml"]


def null_cases() -> Iterator[tuple[str, str, str, str, bool]]:
    """(body, key, method, path) of every top-level body key, and whether its schema lets null through."""
    for op in CATALOGUE:
        if op.body is None:
            continue
        for key, schema in CONTROL_BODIES[op.body].get("properties", {}).items():
            types = schema.get("type", [])
            takes_null = "null" in types or None in schema.get("enum", [])
            yield (
                op.body,
                key,
                op.method.upper(),
                op.path.replace("{serial}", S1).replace("{name}", "clock_lost"),
                takes_null,
            )


@pytest.mark.parametrize(("body", "key", "method", "path", "takes_null"), list(null_cases()))
async def test_null_is_in_a_schema_exactly_where_the_server_takes_it(
    control: Client, body: str, key: str, method: str, path: str, takes_null: bool
) -> None:
    data = {key: None}
    if body == "NetworkRules" and key != "rules":
        data["rules"] = []
    resp = await control.request(method, path, json=data)
    assert resp.status == (200 if takes_null else 400), (body, key, await resp.text())


async def test_405_answers_say_which_methods_the_path_takes(control: Client, twin: Twin) -> None:
    """RFC 9110 §15.5.6: a 405 carries Allow; both APIs (it was missing on both)."""
    resp = await control.post("/api/meters")
    assert (resp.status, resp.headers.get("Allow")) == (405, "GET")
    resp = await control.post(f"/api/meters/{S1}/network")
    assert resp.status == 405 and set(resp.headers["Allow"].split(",")) == {"GET", "PUT", "DELETE"}
    assert (await resp.json())["error"] == "method_not_allowed"
    async with aiohttp.ClientSession() as session:
        async with session.delete(twin.slot(S1).url + "/counter/v1/ocmf/gw") as meter:
            assert (meter.status, meter.headers.get("Allow")) == (405, "GET,POST")
            assert (await meter.json())["error"] == "method_not_allowed"
        async with session.put(twin.slot(S1).url + "/counter/v1/ocmf/metervalue") as meter:
            assert (meter.status, meter.headers.get("Allow")) == (405, "GET")


async def test_both_documents_list_405_with_its_allow_header(control: Client) -> None:
    for path in ("/api/openapi.json", "/api/openapi-meter.json"):
        document = await json_ok(await control.get(path))
        for item in document["paths"].values():
            for operation in item.values():
                assert operation["responses"]["405"]["headers"]["Allow"]["required"] is True


async def test_servers_name_the_ports_actually_bound(control: Client, twin: Twin) -> None:
    document = await json_ok(await control.get("/api/openapi.json"))
    assert [s["url"] for s in document["servers"]] == [f"http://127.0.0.1:{control.server.port}"]
    meter = await json_ok(await control.get("/api/openapi-meter.json"))
    assert [s["url"] for s in meter["servers"]] == [slot.url for slot in twin.slots.values()]
    assert all(slot.port for slot in twin.slots.values())


async def test_the_safe_xml_export_and_the_dashboard_files_are_documented(control: Client) -> None:
    document = await json_ok(await control.get("/api/openapi.json"))
    records = document["paths"]["/api/meters/{serial}/records"]["get"]["responses"]["200"]["content"]
    assert set(records) == {"application/json", "application/xml"}
    resp = await control.get(f"/api/meters/{S1}/records?format=safe-xml")
    assert resp.content_type == "application/xml"
    static = document["paths"]["/static/{path}"]["get"]
    resp = await control.get("/static/app.js")
    assert resp.status == 200 and resp.content_type in static["responses"]["200"]["content"]
    assert "404" in static["responses"]


async def test_a_missing_dashboard_file_is_a_json_404(control: Client) -> None:
    """aiohttp's static route answered an empty 404 (application/octet-stream): found by schemathesis."""
    for path in ("/static/nope.js", "/static/%2e%2e%2fpyproject.toml", "/static/index.html%00"):
        resp = await control.get(path)
        assert resp.status == 404 and resp.content_type == "application/json", path
        assert (await resp.json())["error"] == "not_found"


TEXT_FIELDS = [("gw", "CT"), ("gw", "CI"), ("tariff", "TT"), ("user", "IL"), ("user", "IT"), ("user", "ID")]


@pytest.mark.parametrize(("node", "key"), TEXT_FIELDS)
def test_the_meter_documents_text_patterns_refuse_what_the_meter_refuses(node: str, key: str) -> None:
    """meter-api.md §1: printable ASCII without '|'; the document's pattern says the same as model/requests.py."""
    document = meter_document()
    body = document["paths"][f"/counter/v1/ocmf/{node}"]["post"]["requestBody"]["content"]["application/json"]
    schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]["properties"][key]
    pattern = ecma_regex(schema["pattern"])
    for value in ("ok text ~!", "a|b", "caf\u00e9", "tab\there", "line\n", "\x7f"):
        refused = pattern.search(value) is None
        try:
            requests.text({key: value}, key, 0, 250)
        except Refusal:
            assert refused, value
        else:
            assert not refused, value
