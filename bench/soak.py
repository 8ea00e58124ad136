"""Soak: ``python -m bench.soak --meters M --minutes T`` polls every meter once a second over a new
connection (as drivers do), samples the twin's RSS, and reports errors and memory growth.

Growth compares the RSS after the first minute (or the first tenth of a short run) with the RSS at the end,
so start-up allocations are not counted as a leak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Any

from .common import cores, pinned, rss_kib, serve


def sample_rss(pid: int, stop: threading.Event, samples: list[tuple[float, int]], every_s: float) -> None:
    started = time.monotonic()
    while not stop.wait(every_s):
        try:
            samples.append((time.monotonic() - started, rss_kib(pid)))
        except (OSError, RuntimeError):
            return


def run(meters: int, minutes: float, journal_size: int | None = None) -> dict[str, Any]:
    server_core, generator_core = cores()
    extra = [] if journal_size is None else ["--journal-size", str(journal_size)]
    served = serve(meters, core=server_core, extra=extra)
    samples: list[tuple[float, int]] = [(0.0, rss_kib(served.pid))]
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(served.pid, stop, samples, 5.0), daemon=True)
    sampler.start()
    seconds = minutes * 60
    command = [sys.executable, "-m", "bench.loadgen", "--ports", ",".join(str(m.port) for m in served.meters)]
    command += ["--seconds", str(seconds), "--warmup", "0"]
    try:
        done = subprocess.run(pinned(command, generator_core), capture_output=True, text=True, check=True)
    finally:
        stop.set()
        sampler.join()
        alive = served.process.poll() is None
        served.stop()
    load: dict[str, Any] = json.loads(done.stdout)
    settle = min(60.0, seconds / 10)
    baseline = next((rss for moment, rss in samples if moment >= settle), samples[0][1])
    final = samples[-1][1]
    return {
        "meters": meters,
        "minutes": minutes,
        "requests": load["requests"],
        "errors": load["errors"],
        "error_kinds": load["error_kinds"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "max_ms": load["max_ms"],
        "generator_lag_p99_ms": load["generator_lag_p99_ms"],
        "rss_start_kib": samples[0][1],
        "rss_baseline_kib": baseline,
        "rss_end_kib": final,
        "rss_max_kib": max(rss for _, rss in samples),
        "rss_growth_pct": round((final - baseline) / baseline * 100, 2),
        "twin_alive_at_end": alive,
        "journal_size": journal_size or "default (10000 per meter)",
        "method": (
            f"serve --meters {meters} pinned to core {server_core}; bench.loadgen pinned to core {generator_core} "
            "polls GET metervalue on each meter at 1 Hz over a new connection; RSS sampled every 5 s; growth = "
            f"end vs. RSS after {settle:g} s"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--journal-size", type=int, help="serve --journal-size (the ring fills before it is flat)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args.meters, args.minutes, args.journal_size)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    ok = result["errors"] == 0 and result["rss_growth_pct"] < 5 and result["twin_alive_at_end"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
