"""Memory per idle meter: RSS of ``serve --meters N`` minus ``serve --meters 1``, divided by N - 1."""

from __future__ import annotations

import time
from typing import Any

from .common import rss_kib, serve


def idle_rss(meters: int, settle_s: float = 1.0) -> int:
    served = serve(meters)
    try:
        time.sleep(settle_s)
        return rss_kib(served.pid)
    finally:
        served.stop()


def run(meters: int) -> dict[str, Any]:
    one = idle_rss(1)
    many = idle_rss(meters)
    return {
        "idle_meter_kib": round((many - one) / (meters - 1), 1),
        "idle_rss_kib_1": one,
        f"idle_rss_kib_{meters}": many,
        "idle_meter_method": f"VmRSS of serve --meters {meters} minus --meters 1 after 1 s idle, / {meters - 1}",
    }
