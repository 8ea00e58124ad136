"""The event hub behind the live event stream (control-api.md §2, ``/api/events``; the SSE handler: events.py).

A small in-process pub/sub hub is fed synchronously by ``Meter.listeners`` and ``Journal.listeners``; each
subscriber owns a bounded queue, so a slow client never blocks the meters nor grows memory without bound: when
its queue is full, new events are dropped and the subscriber later receives one ``dropped`` event (with the
count) at the place of the gap, which tells it to reload full state. With nobody subscribed, publishing costs
one truthiness check, so fleets and benchmarks pay nothing for the stream.

Event shape (one JSON object per Server-Sent Event, ``data:`` line, ``id:`` = ``seq``)::

    {"seq": 7, "type": "state", "serial": "1ISA0200000001", "kind": "load", "data": {...}, "wall_time": ...}

Types: ``hello`` (first event of a stream: meters, intervals), ``state`` (a ``Meter`` listener kind: load, gw,
tariff, datetime, user, transaction_begin, transaction_end, fault_raised, fault_cleared, power, profile,
factory_reset), ``request`` (a journal entry of the meter API), ``values`` (live electrical values and
registers of a meter whose values moved, at most once per ``values_interval_s``), ``dropped`` (``count``
events were lost by this subscriber). Comment lines (``: ping``) are heartbeats. An event that cannot be encoded
as JSON reaches every subscriber as a ``dropped`` event with its ``seq`` (and one log line): one bad event never
ends a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.fleet import MeterSlot, Twin
from iemdcr_twin.simulator.journal import JournalEntry, PollRun

log = logging.getLogger("iemdcr.events")

Event = dict[str, Any]
DEFAULT_QUEUE_SIZE = 1000
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_VALUES_INTERVAL_S = 1.0


class StreamClosed(Exception):
    """The hub was closed (server shutting down): the subscriber should end its stream."""


class Subscription:
    """One subscriber's bounded queue. ``get`` returns events in order, a ``dropped`` marker at a gap."""

    def __init__(self, hub: EventHub, serial: str | None, maxsize: int) -> None:
        self.hub = hub
        self.serial = serial
        self.maxsize = maxsize
        self._queue: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._dropped = 0
        self.dropped_total = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        """Queue an event without ever blocking; drop it when the queue is full."""
        if self.closed or (self.serial is not None and event.get("serial") not in (None, self.serial)):
            return
        if len(self._queue) >= self.maxsize:
            self._dropped += 1
            self.dropped_total += 1
            return
        if self._dropped:
            # the gap goes before the first event that follows it (queue may hold maxsize + 1 for a moment)
            self._queue.append(self._dropped_marker())
        self._queue.append(event)
        self._wakeup.set()

    def _dropped_marker(self) -> Event:
        count, self._dropped = self._dropped, 0
        return {"seq": None, "type": "dropped", "serial": self.serial, "count": count, "wall_time": time.time()}

    def __len__(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> Event | None:
        if self._queue:
            return self._queue.popleft()
        if self._dropped:
            return self._dropped_marker()
        if self.closed:
            raise StreamClosed
        return None

    async def get(self) -> Event:
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            self._wakeup.clear()
            await self._wakeup.wait()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()


class EventHub:
    """Fan-out of twin events to subscribers. Synchronous ``publish``; everything runs on the event loop."""

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        values_interval_s: float = DEFAULT_VALUES_INTERVAL_S,
    ) -> None:
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.values_interval_s = values_interval_s
        self._subscribers: set[Subscription] = set()
        self._seq = 0
        self._detach: list[Callable[[], None]] = []
        self._attached: set[int] = set()
        self._last_values: dict[str, tuple[Any, ...]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._unencodable_seq: int | None = None
        self.twin: Twin | None = None
        self.closed = False

    # ---- publishing ------------------------------------------------------------------------------------

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(self, type_: str, serial: str | None, **fields: Any) -> None:
        if not self._subscribers:
            return
        self._seq += 1
        event: Event = {"seq": self._seq, "type": type_, "serial": serial, **fields, "wall_time": time.time()}
        for subscriber in tuple(self._subscribers):
            subscriber.offer(event)

    @contextlib.contextmanager
    def subscribe(self, serial: str | None = None, queue_size: int | None = None) -> Iterator[Subscription]:
        if self.closed:
            raise StreamClosed
        subscription = Subscription(self, serial, queue_size or self.queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
            subscription.close()

    def unencodable(self, event: Event, error: Exception) -> Event:
        """What subscribers get instead of an event that does not encode: a ``dropped`` marker for it.

        Logs one line per such event, not one per subscriber (seqs only grow: the first subscriber to meet it logs).
        """
        seq = event.get("seq")
        if not isinstance(seq, int) or self._unencodable_seq is None or seq > self._unencodable_seq:
            self._unencodable_seq = seq if isinstance(seq, int) else self._unencodable_seq
            log.warning(
                "event %s (%s of %s) could not be encoded as JSON (%s); subscribers get a dropped marker",
                seq,
                str(event.get("type"))[:40],
                str(event.get("serial"))[:40],
                type(error).__name__,
            )
        serial = event.get("serial")
        return {
            "seq": seq if isinstance(seq, int) else None,
            "type": "dropped",
            "serial": serial if isinstance(serial, str) else None,
            "count": 1,
            "wall_time": time.time(),
        }

    def close(self) -> None:
        """End every stream (server shutdown); later subscriptions are refused."""
        self.closed = True
        for subscriber in tuple(self._subscribers):
            subscriber.close()

    # ---- wiring to a twin ----------------------------------------------------------------------------

    def attach(self, twin: Twin) -> None:
        """Listen to every meter and journal of ``twin`` (call again after adding meters: it is idempotent)."""
        self.twin = twin
        for slot in twin.slots.values():
            if id(slot.meter) not in self._attached:
                self._attach_slot(slot)

    def _attach_slot(self, slot: MeterSlot) -> None:
        serial = slot.meter.serial
        meter, journal = slot.meter, slot.host.journal

        def on_state(kind: str, data: dict[str, Any]) -> None:
            if self._subscribers:  # with nobody listening, a state change costs this check only
                self.publish("state", serial, kind=kind, data=_jsonable(data))

        on_request = _RequestEvents(self, serial)
        meter.listeners.append(on_state)
        journal.listeners.append(on_request)
        self._attached.add(id(meter))

        def detach() -> None:
            with contextlib.suppress(ValueError):
                meter.listeners.remove(on_state)
            with contextlib.suppress(ValueError):
                journal.listeners.remove(on_request)

        self._detach.append(detach)

    def detach(self) -> None:
        for undo in self._detach:
            undo()
        self._detach.clear()
        self._attached.clear()

    # ---- live values -----------------------------------------------------------------------------------

    def publish_values(self) -> int:
        """Publish a ``values`` event for each meter whose values changed since the last one; returns how many."""
        if not self._subscribers or self.twin is None:
            return 0
        sent = 0
        for serial, slot in self.twin.slots.items():
            meter = slot.meter
            quick = (meter.powered, meter.current_A, meter.voltage_V)
            last = self._last_values.get(serial)
            if last is not None and last[0] == quick and quick[1] * quick[2] == 0:
                continue  # no power flows and the inputs did not move: nothing to integrate
            values = live_values(view.snapshot(meter))
            key = (quick, json.dumps(values, sort_keys=True))
            if last is not None and last[1] == key[1]:
                self._last_values[serial] = key
                continue
            self._last_values[serial] = key
            self.publish("values", serial, data=values)
            sent += 1
        return sent

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.values_interval_s)
            try:
                self.publish_values()
            except Exception:  # a bug here must not end the ticker silently for every dashboard
                log.exception("publishing live values failed")

    def start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None


def live_values(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The part of a meter snapshot that moves on its own: electrical values, registers, display, clock."""
    return {
        "powered": snapshot["powered"],
        "electrical": snapshot["electrical"],
        "registers": snapshot["registers"],
        "display": snapshot["display"],
        "clock": snapshot["clock"],
    }


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` itself when it encodes as JSON, else a copy with odd values as strings (or as is: the stream
    then sends a ``dropped`` marker for it); never raises into the meter that changed."""
    try:
        json.dumps(data)
    except (TypeError, ValueError):
        try:
            return dict(json.loads(json.dumps(data, default=str)))
        except (TypeError, ValueError, RecursionError):
            return data
    except RecursionError:
        return data
    return data


class _RequestEvents:
    """A journal listener that publishes each request as a ``request`` event while anyone subscribes."""

    def __init__(self, hub: EventHub, serial: str) -> None:
        self.hub = hub
        self.serial = serial

    def on_entry(self, entry: JournalEntry) -> None:
        if self.hub.has_subscribers:
            self.hub.publish("request", self.serial, data=entry.as_dict())

    def on_polls(self, run: PollRun) -> None:
        if self.hub.has_subscribers:  # entries are made only for someone who listens
            for entry in run.entries():
                self.hub.publish("request", self.serial, data=entry.as_dict())
