"""``GET /metrics``: Prometheus text with requests, latency, transactions, signatures, faults, registers and
findings, read back with prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

import aiohttp
import prometheus_client
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from iemdcr_twin.simulator.control.prometheus import LATENCY_BUCKETS_S, Metrics, findings_by_code
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model.timefmt import format_tm
from iemdcr_twin.simulator.network_faults import ACTIONS
from tests.support.http import json_ok
from tests.support.meter import charge
from tests.support.twin import S1, S2, meter_url, new_twin

Client = TestClient[Any, Any]
Labels = frozenset[tuple[str, str]]
Samples = dict[str, dict[Labels, float]]  # sample name -> its series (labels -> value)
FAMILIES = {  # every family /metrics shows, by the name prometheus_client's parser gives it, and its type
    ("iemdcr_requests", "counter"),  # series: iemdcr_requests_total
    ("iemdcr_request_duration_seconds", "histogram"),
    ("iemdcr_transactions", "counter"),
    ("iemdcr_signatures", "counter"),
    ("iemdcr_faults_raised", "counter"),
    ("iemdcr_power_cycles", "counter"),
    ("iemdcr_network_faults", "counter"),
    ("iemdcr_conformance_findings", "counter"),
    ("iemdcr_meter_powered", "gauge"),
    ("iemdcr_transaction_active", "gauge"),
    ("iemdcr_active_faults", "gauge"),
    ("iemdcr_signed_records", "gauge"),
    ("iemdcr_import_register_joules", "gauge"),
    ("iemdcr_export_register_joules", "gauge"),
}
LE = [*(repr(bound) for bound in LATENCY_BUCKETS_S), "+Inf"]


def labels(**values: str) -> Labels:
    return frozenset(values.items())


def parse(text: str) -> tuple[set[tuple[str, str]], Samples]:
    """The families (name, type) and the samples of an exposition, as prometheus_client's parser reads them."""
    families: set[tuple[str, str]] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families.add((family.name, family.type))
        for sample in family.samples:
            series = samples.setdefault(sample.name, {})
            key = labels(**sample.labels)
            assert key not in series, sample  # one value per series
            series[key] = sample.value
    return families, samples


async def scrape_families(control: Client) -> tuple[set[tuple[str, str]], Samples]:
    resp = await control.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(await resp.text())


async def scrape(control: Client) -> Samples:
    """Every series of ``GET /metrics``: ``scrape(control)["iemdcr_requests_total"][labels(meter=..., ...)]``."""
    return (await scrape_families(control))[1]


def buckets(samples: Samples, serial: str) -> list[float]:
    """The meter's cumulative bucket counts in ``LE`` order."""
    series = samples["iemdcr_request_duration_seconds_bucket"]
    return [series[labels(le=le, meter=serial)] for le in LE]


@pytest.fixture
def twin() -> Twin:
    return new_twin(2)


async def test_requests_latency_and_meter_counters(control: Client, twin: Twin) -> None:
    meter = twin.slot(S1).meter
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(meter_url(twin, "metervalue")) as resp:
                assert resp.status == 200
        async with session.get(meter_url(twin, "receipt")) as resp:
            assert resp.status == 404
        async with session.get(twin.slot(S1).url + "/no/such/node") as resp:
            assert resp.status == 404
    charge(meter, twin.clock, current=50.0, seconds=600.0, init=True)
    await json_ok(await control.put(f"/api/meters/{S1}/faults/clock_lost"))
    families, m = await scrape_families(control)
    assert families == FAMILIES
    assert m["iemdcr_requests_total"] == {
        labels(meter=S1, node="metervalue", method="GET", status="200"): 3,
        labels(meter=S1, node="receipt", method="GET", status="404"): 1,
        labels(meter=S1, node="other", method="GET", status="404"): 1,
    }
    assert m["iemdcr_request_duration_seconds_count"] == {labels(meter=S1): 5, labels(meter=S2): 0}
    assert buckets(m, S1)[-1] == 5 and buckets(m, S2) == [0] * len(LE)
    assert m["iemdcr_request_duration_seconds_sum"][labels(meter=S1)] > 0
    assert m["iemdcr_request_duration_seconds_sum"][labels(meter=S2)] == 0
    for name, s1_value in (
        ("iemdcr_transactions_total", 1),
        ("iemdcr_signatures_total", 1),
        ("iemdcr_faults_raised_total", 1),
        ("iemdcr_power_cycles_total", 0),
        ("iemdcr_meter_powered", 1),
        ("iemdcr_transaction_active", 0),
        ("iemdcr_active_faults", 1),
        ("iemdcr_signed_records", 1),
        ("iemdcr_export_register_joules", 0),
    ):
        s2_value = 1 if name == "iemdcr_meter_powered" else 0
        assert m[name] == {labels(meter=S1): s1_value, labels(meter=S2): s2_value}, name
    # the charge: 50 A at 400 V for 600 s = 12 MJ, shown as the meter counts it, in whole mWh of 3.6 J
    snapshot = await json_ok(await control.get(f"/api/meters/{S1}"))
    assert snapshot["registers"]["import_mWh"] == 3_333_333
    assert m["iemdcr_import_register_joules"] == {labels(meter=S1): 11_999_998.8, labels(meter=S2): 0}
    assert "iemdcr_network_faults_total" not in m and "iemdcr_conformance_findings_total" not in m


def test_the_registers_are_read_up_to_the_scrape() -> None:
    """The scrape integrates the registers itself: it does not wait for a request or the twin's checkpoint
    (every 5 s and after every clock jump once the twin is started; this one is not)."""
    twin = new_twin()
    metrics = Metrics(twin)
    twin.slot(S1).meter.set_load(-10.0, 400.0)  # 4 kW exported for an hour: 14.4 MJ
    twin.clock.advance(3600)
    m = parse(generate_latest(metrics.registry).decode())[1]
    assert m["iemdcr_export_register_joules"] == {labels(meter=S1): 14_400_000}
    assert m["iemdcr_import_register_joules"] == {labels(meter=S1): 0}


async def test_histogram_buckets_are_cumulative(control: Client, twin: Twin) -> None:
    twin.slot(S1).meter.switches = twin.slot(S1).meter.switches.updated({"response_latency_ms": 0})
    async with aiohttp.ClientSession() as session, session.get(meter_url(twin, "gw")) as resp:
        assert resp.status == 200
    counts = buckets(await scrape(control), S1)
    assert counts == sorted(counts) and counts[-1] == 1


async def test_latencies_fall_in_their_buckets_from_single_entries_and_poll_runs() -> None:
    """With an event loop running the listeners hear the journal at the scrape's flush: the first three polls
    as one run, the POST and the DELETE as entries, the last poll as a run of one."""
    twin = new_twin()
    metrics = Metrics(twin)
    metrics.hook()
    journal = twin.slot(S1).host.journal
    poll = "/counter/v1/ocmf/metervalue"
    for method, path, status, latency_ms in (
        ("GET", poll, 200, 0.25),  # a run of three polls
        ("GET", poll, 200, 0.5),  # on the bound: le is "less or equal"
        ("GET", poll, 200, 3.0),
        ("POST", "/counter/v1/ocmf/receipt", 409, 40.0),  # a single entry ends the run
        ("GET", poll, 200, 20_000.0),  # beyond the last bound (10 s)
        ("DELETE", "/counter/v1/ocmf/odd", 0, 1.0),  # closed without an answer; unknown node
    ):
        journal.add(0, 0, method, path, None, status, None, latency_ms)
    families, m = parse(generate_latest(metrics.registry).decode())
    assert families == FAMILIES
    assert buckets(m, S1) == [2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6]
    assert m["iemdcr_request_duration_seconds_count"] == {labels(meter=S1): 6}
    assert m["iemdcr_request_duration_seconds_sum"][labels(meter=S1)] == pytest.approx(20.04475)
    assert m["iemdcr_requests_total"] == {
        labels(meter=S1, node="metervalue", method="GET", status="200"): 4,
        labels(meter=S1, node="receipt", method="POST", status="409"): 1,
        labels(meter=S1, node="other", method="DELETE", status="0"): 1,
    }


def test_each_control_app_has_its_own_registry() -> None:
    """Two twins in one process (tests, concurrent scenarios): each registry shows its own meters only, and
    prometheus_client's global registry gets none of them."""
    twins = new_twin(), new_twin(2)
    registries = [Metrics(twin).registry for twin in twins]
    charge(twins[1].slot(S2).meter, twins[1].clock, current=50.0, seconds=600.0, init=True)
    first, second = (parse(generate_latest(registry).decode())[1] for registry in registries)
    assert first["iemdcr_transactions_total"] == {labels(meter=S1): 0}
    assert second["iemdcr_transactions_total"] == {labels(meter=S1): 0, labels(meter=S2): 1}
    global_families = parse(generate_latest(prometheus_client.REGISTRY).decode())[0]
    assert not [name for name, _ in global_families if name.startswith("iemdcr_")]


async def test_network_faults_are_counted(control: Client, twin: Twin) -> None:
    rules = {"rules": [{"action": "status", "status": 503, "count": 2}]}
    await json_ok(await control.put(f"/api/meters/{S1}/network", json=rules))
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(meter_url(twin, "gw")) as resp:
                assert resp.status == 503
    m = await scrape(control)
    assert m["iemdcr_network_faults_total"] == {
        labels(meter=S1, action=action): 2 if action == "status" else 0 for action in ACTIONS
    }
    assert m["iemdcr_requests_total"] == {labels(meter=S1, node="gw", method="GET", status="503"): 2}


async def test_conformance_findings_are_counted_by_code(control: Client, twin: Twin) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # gw written twice in one power cycle, with the true time (meter_time_true holds)
            gw = {"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": format_tm(twin.clock.wall(), 60)}
            async with session.post(meter_url(twin, "gw"), json=gw) as resp:
                await resp.read()
    m = await scrape(control)
    # the second POST gw of the power cycle is the driver's fault: one finding, on that meter only
    assert m["iemdcr_conformance_findings_total"] == {labels(meter=S1, code="gw_repeated"): 1}


def test_findings_hook_without_a_monitor_counts_journal_findings() -> None:
    host = new_twin().slot(S1).host
    journal = host.journal
    for codes in (["a", "b"], ["a"]):
        entry = journal.add(
            sim_time=0, wall_time=0, method="GET", path="/x", body=None, status=200, error=None, latency_ms=1
        )
        for code in codes:
            journal.add_finding(entry, code)
    assert findings_by_code(host) == {"a": 2, "b": 1}
