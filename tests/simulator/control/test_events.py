"""The live event stream (``GET /api/events``) and its hub: fan-out, filters, bounded queues, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.control import hub as hub_module
from iemdcr_twin.simulator.control.hub import EventHub, StreamClosed
from iemdcr_twin.simulator.control.keys import EVENTS_KEY
from iemdcr_twin.simulator.fleet import Twin
from iemdcr_twin.simulator.journal import JournalEntry
from tests.support.meter import GW
from tests.support.twin import S1, S2, new_twin

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
Client = TestClient[Any, Any]

LIMIT_S = 10  # a safety bound on reads that a correct server answers at once; never a sleep


@pytest.fixture
def twin(clock: SimClock) -> Twin:
    return new_twin(2, clock, journal_size=50)


@pytest.fixture
def app(twin: Twin) -> web.Application:
    app = create_control_app(twin)
    app[EVENTS_KEY].values_interval_s = 3600  # the tests publish values themselves, deterministically
    return app


@pytest.fixture
async def control(aiohttp_client: ClientFactory, app: web.Application) -> Client:
    return await aiohttp_client(app)


class Stream:
    """A parsed Server-Sent Events stream: ``next()`` gives the next event (or ``": ping"`` for a heartbeat)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> Any:
        data: list[str] = []
        async with asyncio.timeout(LIMIT_S):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the stream ended")
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    return line
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    return json.loads("\n".join(data))

    async def next_of(self, type_: str) -> dict[str, Any]:
        """The next event of one type, skipping others (heartbeats, values...)."""
        while True:
            event = await self.next()
            if isinstance(event, dict) and event["type"] == type_:
                return event


async def open_stream(control: Client, query: str = "") -> Stream:
    response = await control.get("/api/events" + query)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = Stream(response)
    hello = await stream.next()
    assert hello["type"] == "hello"
    return stream


@pytest.fixture
async def stream(control: Client) -> AsyncIterator[Stream]:
    stream = await open_stream(control)
    yield stream
    stream.response.close()


async def test_hello_names_the_meters(control: Client) -> None:
    response = await control.get("/api/events")
    first = await Stream(response).next()
    assert first["type"] == "hello"
    assert first["meters"] == [S1, S2]
    response.close()


async def test_load_change_arrives_as_a_state_event(control: Client, stream: Stream) -> None:
    resp = await control.put(f"/api/meters/{S1}/load", json={"current_A": 10, "voltage_V": 400})
    assert resp.status == 200
    event = await stream.next_of("state")
    assert event["serial"] == S1
    assert event["kind"] == "load"
    assert event["data"] == {"current_A": 10.0, "voltage_V": 400.0, "ramp_s": 0.0}
    assert isinstance(event["seq"], int)


async def test_meter_api_request_arrives_as_a_request_event(control: Client, twin: Twin, stream: Stream) -> None:
    url = twin.slot(S2).url
    async with aiohttp.ClientSession() as device:
        async with device.post(url + "/counter/v1/ocmf/gw", json=GW) as resp:
            assert resp.status == 200
        async with device.post(url + "/counter/v1/ocmf/receipt", json={"TX": "E"}) as resp:
            assert resp.status == 428
    state = await stream.next_of("state")
    assert (state["serial"], state["kind"], state["data"]) == (S2, "gw", {"CT": GW["CT"], "CI": GW["CI"]})
    first = await stream.next_of("request")
    second = await stream.next_of("request")
    assert (first["serial"], first["data"]["method"], first["data"]["path"]) == (S2, "POST", "/counter/v1/ocmf/gw")
    assert first["data"]["status"] == 200
    assert (second["data"]["status"], second["data"]["error"]) == (428, "no_transaction")
    assert second["seq"] > first["seq"]


async def test_faults_and_power_arrive(control: Client, stream: Stream) -> None:
    await control.put(f"/api/meters/{S1}/faults/tamper_detected")
    await control.delete(f"/api/meters/{S1}/faults/tamper_detected")
    await control.post(f"/api/meters/{S1}/power-cycle")
    kinds = [(await stream.next_of("state"))["kind"] for _ in range(4)]
    assert kinds == ["fault_raised", "fault_cleared", "power", "power"]


async def test_serial_filter(control: Client) -> None:
    stream = await open_stream(control, f"?serial={S2}")
    await control.put(f"/api/meters/{S1}/load", json={"voltage_V": 1})
    await control.put(f"/api/meters/{S2}/load", json={"voltage_V": 2})
    event = await stream.next_of("state")
    assert (event["serial"], event["data"]["voltage_V"]) == (S2, 2.0)
    stream.response.close()


async def test_unknown_serial_is_404(control: Client) -> None:
    resp = await control.get("/api/events?serial=1ISA0299999999")
    assert resp.status == 404
    assert (await resp.json())["error"] == "unknown_meter"


async def test_values_event_carries_integrated_registers(
    control: Client, app: web.Application, clock: SimClock, stream: Stream
) -> None:
    await control.put(f"/api/meters/{S1}/load", json={"current_A": 10, "voltage_V": 400})
    clock.advance(360)  # 4 kW for 0.1 h
    hub = app[EVENTS_KEY]
    assert hub.publish_values() >= 1
    values = await stream.next_of("values")
    while values["serial"] != S1:
        values = await stream.next_of("values")
    assert values["data"]["registers"]["import_mWh"] == 400_000
    assert values["data"]["electrical"]["power_W"] == 4000.0
    # nothing moved since: no new values for a frozen clock
    assert hub.publish_values() == 0


async def test_heartbeat_when_idle(control: Client, app: web.Application) -> None:
    app[EVENTS_KEY].heartbeat_s = 0.01
    stream = await open_stream(control)
    assert await stream.next() == ": ping"
    stream.response.close()


async def test_streams_end_when_the_server_stops(twin: Twin) -> None:
    def listener_counts() -> list[tuple[int, int]]:
        return [(len(s.meter.listeners), len(s.host.journal.listeners)) for s in twin.slots.values()]

    app = create_control_app(twin)
    before = listener_counts()  # other parts of the control plane may listen too
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert listener_counts() != before
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"http://127.0.0.1:{port}/api/events")
        stream = Stream(response)
        assert (await stream.next())["type"] == "hello"
        async with asyncio.timeout(LIMIT_S):  # without the shutdown hook this waits for aiohttp's 60 s timeout
            await runner.cleanup()
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            while True:
                await stream.next()
    assert app[EVENTS_KEY].closed
    assert listener_counts() == before  # the hub let go of the meters


# ---- the hub on its own ----------------------------------------------------------------------------------------


def drain(subscription: Any) -> list[dict[str, Any]]:
    events = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


def test_slow_subscriber_drops_and_is_told_where() -> None:
    hub = EventHub(queue_size=3)
    with hub.subscribe() as slow, hub.subscribe(queue_size=100) as fast:
        for n in range(5):
            hub.publish("state", S1, kind="load", data={"n": n})
        assert len(slow) == 3  # bounded: the publisher never waits and memory does not grow
        first = slow.get_nowait()
        hub.publish("state", S1, kind="load", data={"n": 5})
        got = [first, *drain(slow)]
        assert [e["data"]["n"] if e["type"] == "state" else ("dropped", e["count"]) for e in got] == [
            0,
            1,
            2,
            ("dropped", 2),
            5,
        ]
        assert [e["data"]["n"] for e in drain(fast)] == [0, 1, 2, 3, 4, 5]
        assert slow.dropped_total == 2


def test_dropped_marker_when_nothing_follows() -> None:
    hub = EventHub(queue_size=1)
    with hub.subscribe() as sub:
        hub.publish("state", S1, kind="a", data={})
        hub.publish("state", S1, kind="b", data={})
        events = drain(sub)
    assert [e["type"] for e in events] == ["state", "dropped"]
    assert events[1]["count"] == 1


def test_no_subscribers_costs_nothing(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nobody subscribed, a state change or a journalled request neither builds nor encodes an event."""
    built: list[Any] = []
    real_jsonable, real_as_dict = hub_module._jsonable, JournalEntry.as_dict
    monkeypatch.setattr(hub_module, "_jsonable", lambda data: built.append("state") or real_jsonable(data))
    monkeypatch.setattr(JournalEntry, "as_dict", lambda entry: built.append("request") or real_as_dict(entry))
    hub = EventHub()
    hub.attach(twin)
    slot = twin.slot(S1)

    def change_and_request() -> None:
        slot.meter.set_load(10.0, 400.0)
        slot.host.journal.add(
            sim_time=0, wall_time=0, method="POST", path="/x", body={}, status=400, error="x", latency_ms=1
        )
        slot.host.journal.flush()

    change_and_request()
    hub.publish("state", S1, kind="load", data={})
    assert built == []
    with hub.subscribe() as sub:
        assert sub.get_nowait() is None  # nothing was kept from before the subscription
        change_and_request()
        assert built == ["state", "request"]
        assert [(e["seq"], e["type"]) for e in drain(sub)] == [(1, "state"), (2, "request")]
    hub.detach()


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


async def test_an_event_that_does_not_encode_ends_no_stream(
    control: Client, app: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    """One bad event (too deep, circular) reaches each subscriber as a ``dropped`` marker, logged once; the
    streams go on with the next event."""
    hub = app[EVENTS_KEY]
    first, second = await open_stream(control), await open_stream(control)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with caplog.at_level(logging.WARNING, "iemdcr.events"):
        hub.publish("state", S1, kind="deep", data={"v": _nested(5000)})
        hub.publish("state", S1, kind="circular", data=circular)
        hub.publish("state", S1, kind="load", data={"fine": True})
        for stream in (first, second):
            bad = [await stream.next_of("dropped"), await stream.next_of("dropped")]
            assert [(e["seq"], e["count"], e["serial"]) for e in bad] == [(1, 1, S1), (2, 1, S1)]
            good = await stream.next_of("state")
            assert (good["seq"], good["data"]) == (3, {"fine": True})
    lines = [r.getMessage() for r in caplog.records if r.name == "iemdcr.events"]
    assert len(lines) == 2 and all("could not be encoded" in line for line in lines), lines
    for stream in (first, second):
        stream.response.close()


async def test_a_deeply_nested_body_is_refused_and_the_streams_live_on(control: Client, twin: Twin) -> None:
    """A 2 KB body nested 900 deep in an ignored key (the old code accepted it, and encoding its journal entry
    ended every stream): 400 bad_json now, and its journal entry encodes."""
    streams = [await open_stream(control), await open_stream(control)]
    body = b'{"TT":"x","deep":' + b"[" * 900 + b"]" * 900 + b"}"
    assert len(body) < 2100
    async with aiohttp.ClientSession() as device:
        url = twin.slot(S1).url + "/counter/v1/ocmf/tariff"
        async with device.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
            assert (resp.status, (await resp.json())["error"]) == (400, "bad_json")
        async with device.post(url, json={"TT": "0,40 EUR/kWh"}) as resp:
            assert resp.status == 200
    for stream in streams:
        refused = await stream.next_of("request")
        assert (refused["data"]["status"], refused["data"]["error"]) == (400, "bad_json")
        assert isinstance(refused["data"]["body"], str) and len(refused["data"]["body"]) <= 200
        assert (await stream.next_of("state"))["kind"] == "tariff"
        assert (await stream.next_of("request"))["data"]["status"] == 200
        stream.response.close()


async def test_close_ends_waiting_subscribers() -> None:
    hub = EventHub()
    with hub.subscribe() as sub:
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        hub.close()
        with pytest.raises(StreamClosed):
            async with asyncio.timeout(LIMIT_S):
                await waiter
    with pytest.raises(StreamClosed), hub.subscribe():
        pass
