"""``GET /metrics``: Prometheus text with requests, latency, transactions, signatures, faults and findings."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.control.prometheus import findings_by_code
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.model.timefmt import format_tm
from tests.support.http import json_ok
from tests.support.meter import charge
from tests.support.twin import S1, S2, meter_url, new_twin

Client = TestClient[Any, Any]
SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+Inf-]+$')


@pytest.fixture
def twin() -> Twin:
    return new_twin(2)


async def scrape(control: Client) -> dict[str, float]:
    resp = await control.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for line in (await resp.text()).splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE "))
            continue
        assert SAMPLE.match(line), line
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    return samples


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
    m = await scrape(control)
    assert m[f'iemdcr_requests_total{{meter="{S1}",node="metervalue",method="GET",status="200"}}'] == 3
    assert m[f'iemdcr_requests_total{{meter="{S1}",node="receipt",method="GET",status="404"}}'] == 1
    assert m[f'iemdcr_requests_total{{meter="{S1}",node="other",method="GET",status="404"}}'] == 1
    assert m[f'iemdcr_request_duration_seconds_count{{meter="{S1}"}}'] == 5
    assert m[f'iemdcr_request_duration_seconds_bucket{{meter="{S1}",le="+Inf"}}'] == 5
    assert m[f'iemdcr_request_duration_seconds_count{{meter="{S2}"}}'] == 0
    assert m[f'iemdcr_transactions_total{{meter="{S1}"}}'] == 1
    assert m[f'iemdcr_signatures_total{{meter="{S1}"}}'] == 1
    assert m[f'iemdcr_faults_raised_total{{meter="{S1}"}}'] == 1
    assert m[f'iemdcr_active_faults{{meter="{S1}"}}'] == 1
    assert m[f'iemdcr_signed_records{{meter="{S1}"}}'] == 1
    assert m[f'iemdcr_meter_powered{{meter="{S2}"}}'] == 1
    assert m[f'iemdcr_import_register_wh{{meter="{S1}"}}'] > 0


async def test_histogram_buckets_are_cumulative(control: Client, twin: Twin) -> None:
    twin.slot(S1).meter.switches = twin.slot(S1).meter.switches.updated({"response_latency_ms": 0})
    async with aiohttp.ClientSession() as session, session.get(meter_url(twin, "gw")) as resp:
        assert resp.status == 200
    m = await scrape(control)
    buckets = [v for k, v in m.items() if k.startswith(f'iemdcr_request_duration_seconds_bucket{{meter="{S1}"')]
    assert buckets == sorted(buckets) and buckets[-1] == 1


async def test_network_faults_are_counted(control: Client, twin: Twin) -> None:
    rules = {"rules": [{"action": "status", "status": 503, "count": 2}]}
    await json_ok(await control.put(f"/api/meters/{S1}/network", json=rules))
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(meter_url(twin, "gw")) as resp:
                assert resp.status == 503
    m = await scrape(control)
    assert m[f'iemdcr_network_faults_total{{meter="{S1}",action="status"}}'] == 2
    assert m[f'iemdcr_requests_total{{meter="{S1}",node="gw",method="GET",status="503"}}'] == 2


async def test_conformance_findings_are_counted_by_code(control: Client, twin: Twin) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # gw written twice in one power cycle, with the true time (meter_time_true holds)
            gw = {"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": format_tm(twin.clock.wall(), 60)}
            async with session.post(meter_url(twin, "gw"), json=gw) as resp:
                await resp.read()
    m = await scrape(control)
    found = {k: v for k, v in m.items() if k.startswith("iemdcr_conformance_findings_total")}
    # the second POST gw of the power cycle is the driver's fault: one finding, on that meter only
    assert found == {f'iemdcr_conformance_findings_total{{meter="{S1}",code="gw_repeated"}}': 1}


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
