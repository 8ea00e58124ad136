"""Fleet load generator: polls every meter once a second over a new connection, like drivers do.

Runs as its own process (``python -m bench.loadgen``), ideally pinned to another core, and reports request
latencies together with its own event-loop lag so a saturated generator is visible instead of hidden.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

REQUEST = "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
TIMEOUT_S = 5.0


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fetch(port: int, path: str) -> int:
    """One GET over a fresh connection; returns the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(REQUEST.format(path=path, port=port).encode())
        data = await reader.read()
    finally:
        writer.close()
    head = data.split(b"\r\n", 1)[0].split()
    if len(head) < 2 or b"\r\n\r\n" not in data:
        raise ValueError("malformed response")
    return int(head[1])


async def poll_meter(port: int, path: str, offset: float, start: float, end: float, stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    tick = start + offset
    while tick < end:
        await asyncio.sleep(max(0.0, tick - loop.time()))
        sent = loop.time()
        try:
            status = await asyncio.wait_for(fetch(port, path), TIMEOUT_S)
        except TimeoutError:
            stats.error("timeout")
        except (OSError, ValueError) as exc:
            stats.error(type(exc).__name__)
        else:
            stats.latencies.append((loop.time() - sent) * 1000)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if status != 200:
                stats.error(f"status_{status}")
        tick += 1.0


async def watch_lag(end: float, stats: Stats, interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < end:
        before = loop.time()
        await asyncio.sleep(interval)
        stats.lags.append((loop.time() - before - interval) * 1000)


async def run(ports: list[int], seconds: float, path: str, warmup: float = 1.0) -> dict[str, Any]:
    """Poll each port at 1 Hz with phases spread evenly; the first ``warmup`` seconds are not counted."""
    loop = asyncio.get_running_loop()
    warm = Stats()
    stats = Stats()
    begin = loop.time() + 0.2
    rng = random.Random(1)
    offsets = [rng.random() for _ in ports]
    pairs = list(zip(ports, offsets, strict=True))
    if warmup > 0:
        await asyncio.gather(*(poll_meter(p, path, o, begin, begin + warmup, warm) for p, o in pairs))
    start = begin + warmup
    end = start + seconds
    tasks = [poll_meter(p, path, o, start, end, stats) for p, o in pairs]
    await asyncio.gather(watch_lag(end, stats), *tasks)
    return summary(stats, len(ports), seconds)


def summary(stats: Stats, meters: int, seconds: float) -> dict[str, Any]:
    return {
        "meters": meters,
        "seconds": seconds,
        "requests": len(stats.latencies),
        "errors": sum(stats.errors.values()),
        "error_kinds": stats.errors,
        "statuses": {str(k): v for k, v in stats.statuses.items()},
        "p50_ms": percentile(stats.latencies, 0.50),
        "p99_ms": percentile(stats.latencies, 0.99),
        "max_ms": max(stats.latencies, default=None),
        "generator_lag_p99_ms": percentile(stats.lags, 0.99),
        "generator_lag_max_ms": max(stats.lags, default=None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--ports", required=True, help="comma-separated meter-API ports")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--path", default="/counter/v1/ocmf/metervalue")
    args = parser.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",") if p]
    started = time.perf_counter()
    result = asyncio.run(run(ports, args.seconds, args.path, args.warmup))
    result["wall_s"] = round(time.perf_counter() - started, 3)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
