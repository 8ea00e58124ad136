"""Driver outputs as named events: callbacks, subscription queues and an awaitable `wait_for`.

`powermeter` and `public_key_ocmf` are the vars of EVerest's powermeter interface (`interfaces/powermeter.yaml`),
`communication_fault_raised`/`_cleared` its error `powermeter/CommunicationFault`; the others are the driver's
own lifecycle events (driver.md §1).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

POWERMETER = "powermeter"
PUBLIC_KEY_OCMF = "public_key_ocmf"
COMMUNICATION_FAULT_RAISED = "communication_fault_raised"
COMMUNICATION_FAULT_CLEARED = "communication_fault_cleared"
INITIALISED = "initialised"
REINITIALISING = "reinitialising"
WARNING = "warning"
TRANSACTION_ENDED = "transaction_ended"

EVENT_NAMES = frozenset(
    {
        TRANSACTION_ENDED,
        POWERMETER,
        PUBLIC_KEY_OCMF,
        COMMUNICATION_FAULT_RAISED,
        COMMUNICATION_FAULT_CLEARED,
        INITIALISED,
        REINITIALISING,
        WARNING,
    }
)

COMMUNICATION_FAULT = "powermeter/CommunicationFault"


@dataclass(frozen=True)
class DriverEvent:
    """One output. `data` is a Powermeter for `powermeter`, a TransactionEnded for `transaction_ended`, a str for
    the others (None for `initialised`); `seq` counts from 1 in emission order."""

    name: str
    data: Any
    time: float  # the driver clock's now() when emitted
    seq: int

    def to_json(self) -> dict[str, Any]:
        """`{"event", "time", "data"}` (data in EVerest's shape), plus `"error_type"` for the fault events."""
        data = self.data.to_json() if hasattr(self.data, "to_json") else self.data
        out: dict[str, Any] = {"event": self.name, "time": self.time, "data": data}
        if self.name.startswith("communication_fault"):
            out["error_type"] = COMMUNICATION_FAULT
        return out


Predicate = Callable[[DriverEvent], bool]


class Subscription:
    """An unbounded queue of events; iterate it with `async for` or call `get()`. Close it when done."""

    def __init__(self, bus: EventBus, names: frozenset[str] | None) -> None:
        self._bus = bus
        self._names = names
        self._queue: asyncio.Queue[DriverEvent] = asyncio.Queue()

    def _offer(self, event: DriverEvent) -> None:
        if self._names is None or event.name in self._names:
            self._queue.put_nowait(event)

    async def get(self) -> DriverEvent:
        """The next event, waiting for one."""
        return await self._queue.get()

    def get_nowait(self) -> DriverEvent | None:
        """The next event if one is queued, else None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        """Stop receiving events; the queued ones stay readable."""
        self._bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[DriverEvent]:
        return self

    async def __anext__(self) -> DriverEvent:
        return await self.get()


class EventBus:
    """Fan-out of driver events; keeps a bounded history so late waiters can look back."""

    def __init__(self, clock_now: Callable[[], float], history: int = 1000) -> None:
        self._now = clock_now
        self._seq = 0
        self._subscriptions: list[Subscription] = []
        self._callbacks: list[tuple[frozenset[str] | None, Callable[[DriverEvent], None]]] = []
        self.history: deque[DriverEvent] = deque(maxlen=history)

    def emit(self, name: str, data: Any = None) -> DriverEvent:
        """Record the event, queue it for subscriptions and call the callbacks in order; returns it."""
        self._seq += 1
        event = DriverEvent(name=name, data=data, time=self._now(), seq=self._seq)
        self.history.append(event)
        for subscription in list(self._subscriptions):
            subscription._offer(event)
        for names, callback in list(self._callbacks):
            if names is None or name in names:
                callback(event)
        return event

    def on(self, callback: Callable[[DriverEvent], None], names: Iterable[str] | None = None) -> Callable[[], None]:
        """Call `callback` synchronously for each matching event; returns a function that unregisters it."""
        entry = (_names(names), callback)
        self._callbacks.append(entry)
        return lambda: self._callbacks.remove(entry) if entry in self._callbacks else None

    def subscribe(self, names: Iterable[str] | None = None) -> Subscription:
        """A new queue of the events named (all when None); ValueError for an unknown name."""
        subscription = Subscription(self, _names(names))
        self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    async def wait_for(
        self, name: str, predicate: Predicate | None = None, *, include_past: bool = False
    ) -> DriverEvent:
        """The next event called `name` that satisfies `predicate` (or a past one with include_past).

        There is no timeout here on purpose: in virtual time a wall-clock timeout means nothing; wrap the
        call in asyncio.timeout() or race it against the clock as the caller sees fit.
        """
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event name {name!r}; known: {sorted(EVENT_NAMES)}")
        if include_past:
            for event in self.history:
                if event.name == name and (predicate is None or predicate(event)):
                    return event
        with self.subscribe([name]) as subscription:
            while True:
                event = await subscription.get()
                if predicate is None or predicate(event):
                    return event


def _names(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    chosen = frozenset([names] if isinstance(names, str) else names)
    unknown = chosen - EVENT_NAMES
    if unknown:
        raise ValueError(f"unknown event names {sorted(unknown)}; known: {sorted(EVENT_NAMES)}")
    return chosen
