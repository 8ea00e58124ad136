"""``python -m bench --quick`` still runs and writes every key (figures are never asserted), medians with their
interquartile ranges; ``--only`` runs a subset."""

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
    "disk_write_median_ms",
    "transaction_disk_ratio",
}
# Each median is reported with its interquartile range beside it: KEY_iqr = [25th, 75th percentile].
MEDIANS = {
    "metervalue_ratio_keepalive",
    "metervalue_ratio_newconn",
    "metervalue_rps_twin_keepalive",
    "metervalue_rps_bare_keepalive",
    "metervalue_rps_twin_newconn",
    "metervalue_rps_bare_newconn",
    "transaction_median_ms",
    "disk_write_median_ms",
    "serve_ready_s",
}

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="bench reads RSS from /proc"),
]


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
    assert set(results) >= KEYS | MEDIANS | {f"{key}_iqr" for key in MEDIANS}
    # fleet_p99_ms is null when even the smallest step missed its limit on a loaded machine: not asserted.
    for key in KEYS - {"scenario_suite_s", "fleet_p99_ms"}:
        assert isinstance(results[key], int | float), key
    assert results["fleet_steps"], "the fleet bench ran no step"
    for key in MEDIANS:
        low, high = results[f"{key}_iqr"]
        assert low <= results[key] <= high, key  # a quartile pair around its median, whatever the figures
    assert "metervalue_ratio_keepalive" in done.stdout and "transaction_disk_ratio" in done.stdout
    assert "IQR" in done.stdout.splitlines()[0]


def test_only_runs_the_named_parts_and_refuses_unknown_ones(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--quick", "--json", str(out)]
    done = subprocess.run([*command, "--only", "ready"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert "serve_ready_s_iqr" in results and "metervalue_ratio_keepalive" not in results
    refused = subprocess.run([*command, "--only", "ratio,speed"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "speed" in refused.stderr
