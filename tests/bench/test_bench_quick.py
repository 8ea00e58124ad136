"""``python -m bench --quick`` still runs and writes every key (figures are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "metervalue_ratio_keepalive",
    "metervalue_ratio_newconn",
    "fleet_meters",
    "fleet_p99_ms",
    "idle_meter_kib",
    "transaction_median_ms",
    "serve_ready_s",
    "scenario_suite_s",
}

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="bench reads RSS from /proc")


def test_quick_bench_prints_a_table_and_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert set(results) >= KEYS
    # fleet_p99_ms is null when even the smallest step missed its limit on a loaded machine: not asserted.
    for key in KEYS - {"scenario_suite_s", "fleet_p99_ms"}:
        assert isinstance(results[key], int | float), key
    assert results["fleet_steps"], "the fleet bench ran no step"
    assert "metervalue_ratio_keepalive" in done.stdout
