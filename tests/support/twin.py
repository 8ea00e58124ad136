"""The twin for tests: a seeded ``Twin`` on a virtual clock, its meters' URLs, and what its journal saw.

A ``Twin`` here is the real one (``iemdcr_twin.simulator.fleet``): its meters serve the meter API over TCP on
127.0.0.1, each on a free port, and journal every request they answer. Misbehaviour comes from its own faults
(``meter.raise_fault``, firmware switches, power) and its network faults (``network_faults``), never from a
stand-in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSlot, MeterSpec, Twin
from iemdcr_twin.simulator.journal import JournalEntry
from iemdcr_twin.simulator.model import Meter
from iemdcr_twin.simulator.network_faults import NetworkFaults, parse_rules
from tests.support.clock import frozen_clock
from tests.support.http import V1, send_raw

MakeMeter = Callable[..., Awaitable[MeterSlot]]  # the driver tests' make_meter fixture: (**switches) -> started slot
S1 = "1ISA0200000001"  # the serials a twin gives its first meters
S2 = "1ISA0200000002"


def new_twin(meters: int = 1, clock: SimClock | None = None, journal_size: int = 100, seed: str = "tests") -> Twin:
    """A seeded twin on a frozen virtual clock (its own unless given), its meters on free ports (not started)."""
    twin = Twin(clock or frozen_clock(), seed=seed, journal_size=journal_size)
    for index in range(meters):
        twin.add_meter(MeterSpec(port=0), index)
    return twin


async def load_for(clock: SimClock, meter: Meter, current_A: float, voltage_V: float, seconds: float) -> None:
    """Load on for ``seconds`` of the clock's time, then off (below the activation threshold); whoever drives the
    meter does B and E."""
    meter.set_load(current_A, voltage_V)
    await clock.sleep(seconds)
    meter.set_load(0.0)


def meter_url(twin: Twin, node: str, serial: str = S1) -> str:
    """The URL of a v1 node of one meter: ``http://127.0.0.1:PORT/counter/v1/ocmf/NODE``."""
    return twin.slot(serial).url + V1 + node


async def raw_get(twin: Twin, node: str, serial: str = S1) -> bytes:
    """One GET on its own connection, with no client-side retry: b"" when the twin closed without answering."""
    slot = twin.slot(serial)
    request = f"GET {V1}{node} HTTP/1.1\r\nHost: meter\r\nConnection: close\r\n\r\n".encode()
    return await send_raw(slot.bind, slot.port, request)


def network_faults(slot: MeterSlot, *rules: dict[str, Any], seed: int | str = 0) -> NetworkFaults:
    """Replace the meter's network-fault rules (``PUT /network`` bodies' rules, network_faults.py); none: clear."""
    faults = NetworkFaults.of(slot.host)
    faults.replace(*parse_rules({"seed": seed, "rules": list(rules)}))
    return faults


def wire(slot: MeterSlot, since: int = 0, *, polls: bool = False) -> list[JournalEntry]:
    """The meter-API requests the meter answered after journal seq ``since`` (metervalue polls left out)."""
    entries = slot.host.journal.entries(since)
    return entries if polls else [e for e in entries if e.node != "metervalue"]


def calls(entries: Sequence[JournalEntry]) -> list[tuple[str, str, int]]:
    """(method, path after /counter/, status) per request, a receipt POST with its TX: ("POST", "v1/ocmf/receipt
    E", 428). A request that got no answer (a network fault's hang or reset) has status 0."""
    out = []
    for e in entries:
        name = e.path.removeprefix("/counter/")
        if e.node == "receipt" and e.method == "POST" and isinstance(e.body, dict):
            name = f"{name} {e.body.get('TX')}"
        out.append((e.method, name, e.status))
    return out


def requests_to(slot: MeterSlot, method: str, node: str, since: int = 0) -> list[JournalEntry]:
    """The requests of one method to one node (``"receipt"``, ``"transaction"``; v2: ``"v2/transaction"``)."""
    version, _, name = node.rpartition("/")
    return [
        e
        for e in slot.host.journal.entries(since)
        if e.method == method and e.node == name and e.path.startswith(f"/counter/{version or 'v1'}/")
    ]
