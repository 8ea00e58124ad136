"""``python -m bench [--quick] [--only PARTS] [--json FILE]``: measure the twin against its targets, print a table
with each median's interquartile range, write JSON."""

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


# Figures without a target, shown for reading the others: the disk's own cost of E's atomic write, and E over it.
INFO: list[tuple[str, str]] = [
    ("disk_write_median_ms", "write + fsync + rename + folder fsync of a record-sized file, alternating with E"),
    ("transaction_disk_ratio", "transaction_median_ms / disk_write_median_ms"),
]
# Each part and its sizes: (quick, full). The full bench takes about 5 minutes on 2 cores.
PARTS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]] = {
    "ratio": (lambda: ratio.run(seconds=1, connections=4), lambda: ratio.run(seconds=2, rounds=15)),
    "fleet": (lambda: fleet.run([10], seconds=1), lambda: fleet.run([250, 500, 1000, 2000, 3000, 4000], seconds=15)),
    "memory": (lambda: memory.run(20), lambda: memory.run(1000)),
    "transaction": (lambda: transaction.run(10), lambda: transaction.run(400)),
    "ready": (lambda: ready.run(1), lambda: ready.run(9)),
    "scenarios": (lambda: {"scenario_suite_s": None, "scenario_suite_method": "skipped in --quick"}, scenarios.run),
}


def measure(quick: bool, parts: list[str] | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"quick": quick, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    for name in parts or list(PARTS):
        results |= PARTS[name][0 if quick else 1]()
    results["loadavg_end"] = os.getloadavg()[0]
    return results


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


def table(results: dict[str, Any]) -> str:
    """One row per measured figure: value, interquartile range of a median (25th-75th percentile), target."""
    rows = [f"{'measure':30} {'value':>10} {'IQR':>17} {'target':>9}  ok   how"]
    shown = [(key, target, check, METHODS[key]) for key, target, check in TARGETS]
    shown += [(key, "-", None, note) for key, note in INFO]
    for key, target, check, how in shown:
        if key not in results:
            continue
        value = results[key]
        ok = "-" if value is None or check is None else ("yes" if check(value) else "NO")
        spread = results.get(f"{key}_iqr")
        iqr = "-" if spread is None else f"{_shown(spread[0])}-{_shown(spread[1])}"
        rows.append(f"{key:30} {_shown(value):>10} {iqr:>17} {target:>9}  {ok:4} {results.get(how, how)}")
    rows.append(f"(load average {results['loadavg_start']:.2f} at start, {results['loadavg_end']:.2f} at end)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds (smoke test)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--only", help=f"comma-separated parts to run (all when omitted): {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    parts = None if args.only is None else [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(parts or []) - set(PARTS))
    if unknown or parts == []:
        parser.error(f"--only: unknown part(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(PARTS)}")
    started = time.perf_counter()
    results = measure(args.quick, parts)
    results["bench_wall_s"] = round(time.perf_counter() - started, 1)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
