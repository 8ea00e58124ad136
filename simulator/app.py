"""The twin's control app as ``iemdcr-sim serve`` runs it: the control plane with conformance reports plugged in.

The control package defines what its conformance route needs (``control.keys.ConformanceReports``) and
imports nothing above it; this module, above both, hands it the conformance package's ``MonitorReports``.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from iemdcr_twin.simulator.conformance.report import MonitorReports
from iemdcr_twin.simulator.control.app import build_control_app
from iemdcr_twin.simulator.fleet import Twin


def create_control_app(
    twin: Twin,
    *,
    token: str | None = None,
    allow_hosts: Iterable[str] = (),
    allow_origins: Iterable[str] = (),
) -> web.Application:
    """The full control app for one twin (control.app.build_control_app with the conformance monitors)."""
    return build_control_app(twin, MonitorReports(), token=token, allow_hosts=allow_hosts, allow_origins=allow_origins)
