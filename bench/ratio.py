"""Meter API throughput: twin ``GET metervalue`` versus a bare aiohttp handler with a body of the same size.

Both servers run pinned to one core, one after the other, loaded by the same generator pinned to the other
core: ``wrk`` when installed (keep-alive, and ``-H 'Connection: close'`` for a new connection per request),
else an asyncio generator in another process (said in the result).

A round is one twin run and one bare run back to back, and its ratio is twin / bare. Rounds alternate which
server goes first (twin-bare, bare-twin, ...), so a load that rises or falls through the bench favours neither.
The figure is the median of the per-round ratios, with their interquartile range beside it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .common import METERVALUE, cores, median_iqr, pinned, serve

_RPS = re.compile(r"Requests/sec:\s*([\d.]+)")


def wrk_rps(url: str, seconds: float, connections: int, close: bool, core: int) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if close:
        command += ["-H", "Connection: close"]
    done = subprocess.run(pinned([*command, url], core), capture_output=True, text=True, check=True)
    match = _RPS.search(done.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no Requests/sec: {done.stdout[-300:]}")
    return float(match.group(1))


async def _asyncio_worker(port: int, path: str, end: float, close: bool, counter: list[int]) -> None:
    header = "Connection: close\r\n" if close else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n".encode()
    reader = writer = None
    while time.monotonic() < end:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert reader is not None
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        counter[0] += 1
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


def asyncio_rps(url: str, seconds: float, connections: int, close: bool, core: int) -> float:
    """Fallback generator in a child process (same counting for both servers)."""
    code = (
        "import asyncio,sys,time;from bench.ratio import _asyncio_main;"
        f"print(asyncio.run(_asyncio_main({url!r},{seconds},{connections},{close})))"
    )
    done = subprocess.run(pinned([sys.executable, "-c", code], core), capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


async def _asyncio_main(url: str, seconds: float, connections: int, close: bool) -> float:
    port = int(url.split(":")[2].split("/")[0])
    path = "/" + url.split("/", 3)[3]
    counter = [0]
    end = time.monotonic() + seconds
    await asyncio.gather(*(_asyncio_worker(port, path, end, close, counter) for _ in range(connections)))
    return counter[0] / seconds


def start_bare(body: bytes, core: int) -> tuple[subprocess.Popen[str], str, Path]:
    folder = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    body_file = folder / "body.json"
    body_file.write_bytes(body)
    command = pinned([sys.executable, "-m", "bench.bare", str(body_file), METERVALUE], core)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.strip().split("=", 1)[1] + METERVALUE, folder


def run(seconds: float, connections: int = 16, rounds: int = 1) -> dict[str, Any]:
    """Rounds of one twin and one bare run, alternating which goes first; medians of the per-round ratios and
    of the rates, each with its interquartile range (``_iqr``: [25th, 75th percentile])."""
    server_core, generator_core = cores()
    generator = "wrk" if shutil.which("wrk") else "asyncio"
    measure = wrk_rps if generator == "wrk" else asyncio_rps
    twin = serve(1, core=server_core)
    twin_url = twin.meters[0].url + METERVALUE
    body = urllib.request.urlopen(twin_url).read()
    bare, bare_url, folder = start_bare(body, server_core)
    results: dict[str, Any] = {}
    try:
        for mode, close in (("keepalive", False), ("newconn", True)):
            twin_rps, bare_rps = [], []
            for index in range(rounds):
                order = ((twin_rps, twin_url), (bare_rps, bare_url))
                for rates, url in order if index % 2 == 0 else reversed(order):
                    rates.append(measure(url, seconds, connections, close, generator_core))
            ratios = [t / b for t, b in zip(twin_rps, bare_rps, strict=True)]
            results |= median_iqr(f"metervalue_rps_twin_{mode}", twin_rps, 1)
            results |= median_iqr(f"metervalue_rps_bare_{mode}", bare_rps, 1)
            results |= median_iqr(f"metervalue_ratio_{mode}", ratios, 3)
            results[f"metervalue_ratios_{mode}"] = [round(r, 3) for r in ratios]
    finally:
        twin.stop()
        bare.terminate()
        bare.wait()
        shutil.rmtree(folder, ignore_errors=True)
    note = "" if generator == "wrk" else " (wrk not installed: asyncio generator in a child process instead)"
    results["metervalue_body_bytes"] = len(body)
    results["metervalue_method"] = (
        f"{generator}{note}, 1 thread, {connections} connections, {seconds:g} s per run, {rounds} round(s) of one "
        f"twin and one bare run (twin first in even rounds, bare first in odd ones), median and IQR of the "
        f"per-round ratios; servers pinned to core {server_core}, generator to core {generator_core}; "
        f"bare = aiohttp handler returning the twin's {len(body)}-byte metervalue body; newconn adds "
        "'Connection: close'"
    )
    return results
