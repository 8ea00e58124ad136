"""``python -m bench [--quick] [--json FILE]``: measure the twin against its targets, print a table, write JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import fleet, memory, ratio, ready, scenarios, transaction

TARGETS: list[tuple[str, str, Callable[[Any], bool]]] = [
    ("metervalue_ratio_keepalive", ">= 0.85", lambda v: v >= 0.85),
    ("metervalue_ratio_newconn", ">= 0.85", lambda v: v >= 0.85),
    ("fleet_meters", ">= 1000", lambda v: v >= 1000),
    ("fleet_p99_ms", "< 50", lambda v: v < 50),
    ("idle_meter_kib", "< 100", lambda v: v < 100),
    ("transaction_median_ms", "< 5", lambda v: v < 5),
    ("serve_ready_s", "< 1", lambda v: v < 1),
    ("scenario_suite_s", "< 20", lambda v: v < 20),
]
METHODS = {
    "metervalue_ratio_keepalive": "metervalue_method",
    "metervalue_ratio_newconn": "metervalue_method",
    "fleet_meters": "fleet_method",
    "fleet_p99_ms": "fleet_method",
    "idle_meter_kib": "idle_meter_method",
    "transaction_median_ms": "transaction_method",
    "serve_ready_s": "serve_ready_method",
    "scenario_suite_s": "scenario_suite_method",
}


def measure(quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"quick": quick, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    if quick:
        results |= ratio.run(seconds=1, connections=4)
        results |= fleet.run([10], seconds=1)
        results |= memory.run(20)
        results |= transaction.run(10)
        results |= ready.run(1)
        results |= {"scenario_suite_s": None, "scenario_suite_method": "skipped in --quick"}
    else:
        results |= ratio.run(seconds=3, rounds=7)
        results |= fleet.run([250, 500, 1000, 2000, 3000, 4000], seconds=15)
        results |= memory.run(1000)
        results |= transaction.run(200)
        results |= ready.run(5)
        results |= scenarios.run()
    results["loadavg_end"] = os.getloadavg()[0]
    return results


def table(results: dict[str, Any]) -> str:
    rows = [f"{'measure':30} {'value':>10} {'target':>9}  ok   how"]
    for key, target, check in TARGETS:
        value = results.get(key)
        ok = "-" if value is None else ("yes" if check(value) else "NO")
        shown = "null" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        rows.append(f"{key:30} {shown:>10} {target:>9}  {ok:4} {results.get(METHODS[key], '')}")
    rows.append(f"(load average {results['loadavg_start']:.2f} at start, {results['loadavg_end']:.2f} at end)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds (smoke test)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = measure(args.quick)
    results["bench_wall_s"] = round(time.perf_counter() - started, 1)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
