"""Shared helpers: start ``iemdcr-sim serve`` in a child process, read its startup lines, measure its RSS, and
summarise repeated measurements as a median with its interquartile range."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
METERVALUE = "/counter/v1/ocmf/metervalue"
_LINE = re.compile(r"(\w+)=(\S+)")


def cores() -> tuple[int, int]:
    """(server core, generator core): pin them apart when the machine has two or more cores."""
    available = sorted(os.sched_getaffinity(0))
    return (available[0], available[-1])


def pinned(command: list[str], core: int | None) -> list[str]:
    """Prefix ``taskset -c core`` when taskset exists."""
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


def sim_command() -> list[str]:
    """The installed ``iemdcr-sim`` console script beside this interpreter (what ``pip install`` made)."""
    script = Path(sys.executable).with_name("iemdcr-sim")
    if not script.exists():
        raise SystemExit(f"bench: {script} is not installed; run pip install -e '.[test]' first")
    return [str(script)]


@dataclass
class MeterLine:
    serial: str
    url: str
    fingerprint: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Served:
    """A running ``serve`` process with the meters and control URL it announced."""

    process: subprocess.Popen[str]
    meters: list[MeterLine] = field(default_factory=list)
    control: str = ""
    started: float = 0.0
    ready: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def serve(
    meters: int = 1,
    *,
    state_dir: Path | None = None,
    core: int | None = None,
    extra: list[str] | None = None,
    timeout: float = 120.0,
) -> Served:
    """Start ``iemdcr-sim serve`` on free ports and wait until it has announced every meter and the control URL."""
    command = [*sim_command(), "serve", "--port", "0", "--control-port", "0", "--meters", str(meters)]
    command += ["--clock", "virtual", "--seed", "bench"]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    command += extra or []
    started = time.perf_counter()
    process = subprocess.Popen(
        pinned(command, core), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    )
    served = Served(process, started=started)
    _read_announcements(served, process.stdout, timeout)
    served.ready = time.perf_counter()
    return served


def _read_announcements(served: Served, stream: IO[str] | None, timeout: float) -> None:
    assert stream is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            served.stop(kill=True)
            raise RuntimeError("iemdcr-sim serve exited before it was ready")
        fields = dict(_LINE.findall(line))
        if line.startswith("meter "):
            served.meters.append(MeterLine(fields["serial"], fields["url"], fields["fingerprint"]))
        elif line.startswith("control "):
            served.control = fields["url"]
            return
    served.stop(kill=True)
    raise RuntimeError("iemdcr-sim serve was not ready in time")


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_accepting(port: int, timeout: float = 10.0) -> float:
    """Poll until the port accepts a TCP connection; returns the perf_counter time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.perf_counter()
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"port {port} did not accept connections within {timeout} s")


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(25th, 50th, 75th percentile) of the values, interpolated between neighbours (``statistics.quantiles``,
    method "inclusive", whose 50th percentile is ``statistics.median``); one value is all three.

    Raises ValueError on an empty sequence.
    """
    if not values:
        raise ValueError("no values to summarise")
    if len(values) == 1:
        only = float(values[0])
        return only, only, only
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def median_iqr(key: str, values: Sequence[float], digits: int) -> dict[str, Any]:
    """``{key: median, key + "_iqr": [q1, q3]}``, rounded to ``digits``: a median and its interquartile range."""
    q1, median, q3 = quartiles(values)
    return {key: round(median, digits), f"{key}_iqr": [round(q1, digits), round(q3, digits)]}


def filesystem_of(path: Path) -> str:
    """``"<type> on <mount point>"`` of the mount that holds ``path`` (Linux /proc/mounts), or ``"unknown"``."""
    resolved = str(path.resolve())
    best, kind = "", "unknown"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1]
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return f"{kind} on {best}" if best else kind
