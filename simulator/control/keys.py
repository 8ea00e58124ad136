"""The control app's state: typed ``web.AppKey``s, and the one way a handler reaches the twin.

Every handler reads the twin as ``request.app[TWIN_KEY]`` (or a meter of it with ``slot_of``); the services
beside it (event hub, metrics, conformance reports) have a key each. ``app.py`` fills them in.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from iemdcr_twin.simulator.control.hub import EventHub
from iemdcr_twin.simulator.control.prometheus import Metrics
from iemdcr_twin.simulator.fleet import MeterSlot, Twin
from iemdcr_twin.simulator.host import MeterHost


class ConformanceReports(Protocol):
    """What the conformance route needs from the package that judges drivers (``conformance.MonitorReports``).

    Defined here, implemented above: the control package imports nothing of conformance (docs/architecture.md).
    """

    def watch(self, host: MeterHost) -> None:
        """Start judging the meter's traffic now (idempotent)."""
        ...

    def report(self, host: MeterHost, until: str | None) -> dict[str, Any]:
        """The meter's report up to ``until`` (RFC 3339 or epoch seconds, simulated time) or now.

        Raises ValueError, with a message that completes ``until: ...``, for a time it cannot judge.
        """
        ...

    def render_text(self, report: dict[str, Any]) -> str:
        """The report as text for people."""
        ...


TWIN_KEY = web.AppKey("twin", Twin)
EVENTS_KEY = web.AppKey("events", EventHub)
METRICS_KEY = web.AppKey("metrics", Metrics)
REPORTS_KEY: web.AppKey[ConformanceReports] = web.AppKey("conformance_reports")  # a Protocol: no runtime type


def slot_of(request: web.Request) -> MeterSlot:
    """The meter named by the route's ``{serial}``; UnknownMeter (404 ``unknown_meter``) if there is none."""
    return request.app[TWIN_KEY].slot(request.match_info["serial"])
