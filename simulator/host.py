"""What a meter's HTTP adapters need: the model, its clock, its journal, and optional wire interceptors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.model import Meter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Interceptor = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# An interceptor that fakes a network fault stores its code here, so the journal names it even on a 200.
NETWORK_FAULT_KEY = web.RequestKey("network_fault", str)


@dataclass
class MeterHost:
    """One meter as the adapters see it. ``interceptor`` wraps device traffic (network faults)."""

    meter: Meter
    clock: SimClock
    journal: Journal
    interceptor: Interceptor | None = None
    notes: dict[str, object] = field(default_factory=dict)
