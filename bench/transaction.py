"""Transaction latency: ``POST receipt E`` → 200 with the record signed and persisted (fsync) in a state dir, and
beside it the disk's own cost of the same atomic write, so the figure can be read against the disk it ran on.

Each E is followed by one baseline write done by the bench itself: a file of the record's size written to a new
name in a sibling folder on the same file system, with the steps of ``simulator/store.py`` ``write_atomic``
(write, fsync, rename, folder fsync). The two alternate, so both see the same load, and the result gives each
median with its interquartile range and the ratio of the E median to the baseline median.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import cores, filesystem_of, median_iqr, serve
from .http import Client

BASE = "/counter/v1/ocmf/"
GW = {"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"}
USER = {"IS": True, "IL": "VERIFIED", "IF": ["RFID_PLAIN"], "IT": "ISO14443", "ID": "04A1B2C3", "US": True}
WARMUP = 3  # the first signatures build ecdsa's precomputed tables: not counted


def prepare(meter: Client) -> None:
    for node, body in (("gw", GW), ("tariff", {"TT": "0.49 EUR/kWh"}), ("user", USER)):
        status, raw = meter.request("POST", BASE + node, body)
        if status != 200:
            raise RuntimeError(f"POST {node}: {status} {raw[:200]!r}")


def transaction_ms(meter: Client) -> float:
    """One B (not timed) and one E; milliseconds from sending E to its 200."""
    status, raw = meter.request("POST", BASE + "receipt", {"TX": "B"})
    if status != 200:
        raise RuntimeError(f"B: {status} {raw[:200]!r}")
    started = time.perf_counter()
    status, raw = meter.request("POST", BASE + "receipt", {"TX": "E"})
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"E: {status} {raw[:200]!r}")
    return elapsed


def atomic_write_ms(folder: Path, name: str, data: bytes) -> float:
    """Milliseconds for write + fsync + rename + folder fsync of ``data`` to a new file, as write_atomic does."""
    final = folder / name
    temp = folder / f".{final.name}.tmp"
    started = time.perf_counter()
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, final)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return (time.perf_counter() - started) * 1000


def newest_record(state_dir: Path) -> bytes:
    """The bytes of the last record file the twin wrote (its record folder under ``state_dir/<serial>/``)."""
    files = sorted(state_dir.glob("*/records/*.json"))
    if not files:
        raise RuntimeError(f"no record file under {state_dir}")
    return files[-1].read_bytes()


def run(count: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-tx-"))
    disk = Path(tempfile.mkdtemp(prefix="bench-disk-", dir=folder.parent))
    served = serve(1, state_dir=folder, core=cores()[0])
    meter = Client(served.meters[0].url)
    timings: list[float] = []
    baseline: list[float] = []
    try:
        prepare(meter)
        for _ in range(WARMUP):
            transaction_ms(meter)
        record = newest_record(folder)
        for index in range(WARMUP):
            atomic_write_ms(disk, f"warmup-{index}.json", record)
        for index in range(count):
            timings.append(transaction_ms(meter))
            baseline.append(atomic_write_ms(disk, f"{index:08d}.json", record))
    finally:
        meter.close()
        served.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(disk, ignore_errors=True)
    results = median_iqr("transaction_median_ms", timings, 3)
    results["transaction_p90_ms"] = round(sorted(timings)[int(0.9 * len(timings))], 3)
    results |= median_iqr("disk_write_median_ms", baseline, 3)
    results["transaction_disk_ratio"] = round(results["transaction_median_ms"] / results["disk_write_median_ms"], 2)
    results["transaction_method"] = (
        f"{count} B/E pairs over one keep-alive connection to serve --state-dir ({filesystem_of(folder.parent)}); "
        "time from sending POST receipt E to its 200 (record signed; its file written with temp, fsync, rename, "
        f"folder fsync); after each E the bench writes a {len(record)}-byte file the same way into a sibling "
        "folder (disk_write), and transaction_disk_ratio is E's median over that median"
    )
    return results
