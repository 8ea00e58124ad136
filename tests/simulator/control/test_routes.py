"""The control API's route table (simulator/control/routes.py) is the one list of control routes: the app serves
exactly it, the OpenAPI catalogue describes exactly it, and the token and browser guard read who may call what
from it. Also what the split into a control package must not have changed on the wire."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.control.openapi import CATALOGUE, app_routes, meter_document, operation_keys
from iemdcr_twin.simulator.control.routes import ACCESS, ROUTES
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.network_faults import NetworkFaults, RuleError, parse_rules
from tests.simulator.control.test_metrics import scrape
from tests.support.http import json_ok
from tests.support.twin import S1

Client = TestClient[Any, Any]
TABLE = {(route.method, route.path) for route in ROUTES}


def test_the_table_lists_each_route_once() -> None:
    assert len(TABLE) == len(ROUTES)


def test_the_app_serves_exactly_the_route_table(twin: Twin) -> None:
    assert app_routes(create_control_app(twin)) == TABLE


def test_the_openapi_catalogue_describes_exactly_the_route_table() -> None:
    assert operation_keys() == TABLE


def test_the_catalogue_says_who_may_call_a_route_as_the_table_does() -> None:
    table = {(route.method, route.path): route for route in ROUTES}
    for op in CATALOGUE:
        route = table[(op.method.upper(), op.path)]
        assert (op.public, op.guarded) == (route.public, route.guarded), op.path


def test_the_security_exemptions_come_from_the_table_and_are_the_same_as_before() -> None:
    """The token and the browser guard treat exactly these apart (control-api.md §1-§2), as they did when
    security.py listed them by hand."""
    assert ACCESS.public_get_paths == {"/healthz", "/"}
    assert ACCESS.public_get_prefixes == ("/static/",)
    assert ACCESS.query_token_paths == {"/api/events"}
    assert ACCESS.unguarded_get_paths == {"/healthz"}


async def test_head_is_answered_on_the_dashboard_page_and_files_only(control: Client) -> None:
    """HEAD has no body, so only the status shows: 405 wherever the table does not ask for HEAD."""
    statuses = [(await control.head(path)).status for path in ("/", "/static/app.js", "/api/meters", "/healthz")]
    assert statuses == [200, 200, 405, 405]


def test_the_meter_document_is_our_package_data_not_a_foreign_simulator_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Another ``simulator`` package on the path (docs/packaging: the distribution installs beside it) must
    not be asked for the meter API's OpenAPI document; ours is package data of ``iemdcr_twin.simulator``."""
    foreign = types.ModuleType("simulator")
    foreign.__path__ = [str(tmp_path)]
    foreign.__spec__ = None
    foreign.__file__ = str(tmp_path / "__init__.py")
    monkeypatch.setitem(sys.modules, "simulator", foreign)
    document = meter_document()
    assert "/counter/v1/ocmf/metervalue" in document["paths"]


# ---- the host's typed fields (they replace MeterHost.notes) -------------------------------------------------


def test_network_faults_and_conformance_are_attached_to_the_host_on_first_use(twin: Twin) -> None:
    host: MeterHost = twin.slot(S1).host
    assert host.network_faults is None and host.conformance is None
    faults = NetworkFaults.of(host)
    assert host.network_faults is faults and NetworkFaults.of(host) is faults
    create_control_app(twin)  # the control app starts a monitor for every meter it has
    assert host.conformance is not None and dict(host.conformance.counts) == {}


async def test_metrics_show_network_faults_only_for_meters_whose_faults_were_used(control: Client) -> None:
    assert "iemdcr_network_faults_total" not in await scrape(control)
    await json_ok(await control.get(f"/api/meters/{S1}/network"))
    rows = (await scrape(control))["iemdcr_network_faults_total"]
    assert len(rows) == 6 and set(rows.values()) == {0} and all(("meter", S1) in row for row in rows)


def test_network_rules_are_refused_device_side_with_the_control_apis_code() -> None:
    with pytest.raises(RuleError) as refused:
        parse_rules({"rules": [{"action": "delay"}], "extra": 1})
    assert (refused.value.code, str(refused.value)) == ("unknown_key", "unknown key 'extra'; allowed: rules, seed")
    with pytest.raises(RuleError) as refused:
        parse_rules({"rules": [{"action": "delay"}]})
    assert (refused.value.code, str(refused.value)) == (
        "missing_key",
        "rules[0].delay_ms is required for action delay",
    )
