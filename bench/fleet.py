"""Fleet: the most meters one process serves, each polled at 1 Hz over a new connection, with p99 < 50 ms.

The twin runs pinned to one core; the generator (``bench.loadgen``) runs in another process pinned to the
other core and reports its own event-loop lag.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .common import cores, pinned, serve

P99_LIMIT_MS = 50.0


def run_loadgen(ports: list[int], seconds: float, core: int | None, warmup: float = 1.0) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.loadgen", "--ports", ",".join(map(str, ports))]
    command += ["--seconds", str(seconds), "--warmup", str(warmup)]
    done = subprocess.run(pinned(command, core), capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure_step(meters: int, seconds: float) -> dict[str, Any]:
    server_core, generator_core = cores()
    served = serve(meters, core=server_core)
    try:
        result = run_loadgen([m.port for m in served.meters], seconds, generator_core)
    finally:
        served.stop()
    result["ok"] = result["errors"] == 0 and result["p99_ms"] is not None and result["p99_ms"] < P99_LIMIT_MS
    return result


def run(steps: list[int], seconds: float) -> dict[str, Any]:
    """Step up the fleet size; stop at the first step that misses the p99 limit or errs."""
    results = []
    best: dict[str, Any] | None = None
    for meters in steps:
        result = measure_step(meters, seconds)
        results.append(result)
        if not result["ok"]:
            break
        best = result
    return {
        "fleet_meters": best["meters"] if best else 0,
        "fleet_p99_ms": round(best["p99_ms"], 2) if best else None,
        "fleet_steps": results,
        "fleet_method": (
            f"serve --meters N pinned to core {cores()[0]}; python -m bench.loadgen in another process pinned to "
            f"core {cores()[1]} polls GET metervalue on every meter once a second over a new connection "
            f"(Connection: close), {seconds:g} s per step after 1 s warm-up; a step passes with p99 < "
            f"{P99_LIMIT_MS:g} ms and no errors"
        ),
    }
