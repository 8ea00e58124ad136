"""``serve`` readiness: process start until the meter port accepts TCP connections."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from .common import REPO, free_port, median_iqr, sim_command, wait_accepting


def once() -> float:
    meter_port, control_port = free_port(), free_port()
    command = [*sim_command(), "serve", "--port", str(meter_port), "--control-port", str(control_port)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        accepted = wait_accepting(meter_port)
        wait_accepting(control_port)
        return accepted - started
    finally:
        process.terminate()
        process.wait()


def run(repeat: int) -> dict[str, Any]:
    times = [once() for _ in range(repeat)]
    return median_iqr("serve_ready_s", times, 3) | {
        "serve_ready_method": (
            f"median and IQR of {repeat}: Popen of iemdcr-sim serve (1 meter, no state dir) until the meter port "
            "accepts a TCP connection (polled every 2 ms)"
        ),
    }
