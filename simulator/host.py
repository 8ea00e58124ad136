"""What a meter's HTTP adapters need: the model, its clock, its journal, and optional wire interceptors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.model import Meter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Interceptor = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# An interceptor that fakes a network fault stores its code here, so the journal names it even on a 200.
NETWORK_FAULT_KEY = web.RequestKey("network_fault", str)


class FiredFaults(Protocol):
    """A meter's network faults as its host keeps them (``network_faults.NetworkFaults``, a layer above)."""

    @property
    def fired(self) -> Mapping[str, int]:
        """How often each action (delay, status, hang, reset, malformed, refuse) was applied."""
        ...


class FindingCounts(Protocol):
    """A meter's conformance monitor as its host keeps it (``conformance.monitor.ConformanceMonitor``, above)."""

    @property
    def counts(self) -> Mapping[str, int]:
        """Findings per code since the monitor started, beyond the journal's ring buffer."""
        ...


@dataclass
class MeterHost:
    """One meter as the adapters see it. ``interceptor`` wraps device traffic (network faults).

    ``network_faults`` and ``conformance`` are set on first use by their owners (``NetworkFaults.of``,
    ``conformance.attach``), which live above this module; the host types them by what others read.
    """

    meter: Meter
    clock: SimClock
    journal: Journal
    interceptor: Interceptor | None = None
    network_faults: FiredFaults | None = None
    conformance: FindingCounts | None = None
