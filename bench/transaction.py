"""Transaction latency: ``POST receipt E`` → 200 with the record signed and persisted (fsync) in a state dir."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import cores, serve
from .http import Client

BASE = "/counter/v1/ocmf/"
GW = {"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-06T09:26:24,000+0100"}
USER = {"IS": True, "IL": "VERIFIED", "IF": ["RFID_PLAIN"], "IT": "ISO14443", "ID": "04A1B2C3", "US": True}


def prepare(meter: Client) -> None:
    for node, body in (("gw", GW), ("tariff", {"TT": "0.49 EUR/kWh"}), ("user", USER)):
        status, raw = meter.request("POST", BASE + node, body)
        if status != 200:
            raise RuntimeError(f"POST {node}: {status} {raw[:200]!r}")


def run(count: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-tx-"))
    served = serve(1, state_dir=folder, core=cores()[0])
    meter = Client(served.meters[0].url)
    timings: list[float] = []
    try:
        prepare(meter)
        for index in range(count + 3):
            status, raw = meter.request("POST", BASE + "receipt", {"TX": "B"})
            if status != 200:
                raise RuntimeError(f"B: {status} {raw[:200]!r}")
            started = time.perf_counter()
            status, raw = meter.request("POST", BASE + "receipt", {"TX": "E"})
            if index >= 3:  # the first signatures build ecdsa's precomputed tables
                timings.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"E: {status} {raw[:200]!r}")
    finally:
        meter.close()
        served.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "transaction_median_ms": round(statistics.median(timings), 3),
        "transaction_p90_ms": round(sorted(timings)[int(0.9 * len(timings))], 3),
        "transaction_method": (
            f"{count} B/E pairs over one keep-alive connection to serve --state-dir (tmpfs/disk of {folder.parent}); "
            "time from sending POST receipt E to its 200 "
            "(record signed; its file written with temp, fsync, rename, folder fsync)"
        ),
    }
