"""Real processes for tests: start ``iemdcr-sim serve`` and learn its ports from its startup lines.

Readiness is the startup output itself: ``serve`` prints its ``meter ...`` lines and then its ``control ...``
line only once every listener is bound, so ``start_sim`` reads stdout instead of sleeping. The tests run what
``pip install`` made (the console scripts beside this interpreter), never ``python -m`` from the repository.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support.charger import Charger

STARTUP_TIMEOUT_S = 20.0


@dataclass
class MeterLine:
    serial: str
    url: str
    fingerprint: str
    model: str


@dataclass
class Sim:
    """One running ``iemdcr-sim serve`` process."""

    process: subprocess.Popen[bytes]
    stderr_path: Path
    meters: list[MeterLine] = field(default_factory=list)
    control: str = ""
    clock: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def meter(self) -> MeterLine:
        return self.meters[0]

    def charger(self, session: aiohttp.ClientSession, index: int = 0) -> Charger:
        """A charger for meter ``index`` of this process, and the lab on its control port."""
        line = self.meters[index]
        return Charger(session, line.url, self.control, line.serial)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=STARTUP_TIMEOUT_S)


def parse_line(line: str) -> tuple[str, dict[str, str]]:
    """``kind key=value key=value`` (or, with ``--log-format json``, ``{"event": kind, ...}``) -> (kind, fields)."""
    if line.startswith("{"):
        data = json.loads(line)
        return str(data.pop("event", "")), {key: str(value) for key, value in data.items()}
    kind, _, rest = line.strip().partition(" ")
    fields = dict(part.split("=", 1) for part in rest.split())
    return kind, fields


def console_script(name: str) -> str:
    """The installed console script beside this interpreter: the e2e tests run what ``pip install`` made, never
    ``python -m`` from the repository, so a packaging error cannot hide behind the source tree."""
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        raise AssertionError(f"{script} is not installed; install the project first: pip install -e '.[test]'")
    return str(script)


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


def start_sim(workdir: Path, *args: str, preexec_fn: Callable[[], None] | None = None) -> Sim:
    """Start ``iemdcr-sim serve --port 0 --control-port 0 ARGS`` and wait for its startup lines.

    ``preexec_fn`` runs in the child before the command (e.g. to lower its open-file limit).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stderr_path = workdir / f"stderr-{len(list(workdir.glob('stderr-*')))}.log"
    command = [console_script("iemdcr-sim"), "serve", "--port", "0", "--control-port", "0", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, preexec_fn=preexec_fn)
    sim = Sim(process, stderr_path)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            process.kill()
            raise AssertionError(f"serve printed no control line in {STARTUP_TIMEOUT_S} s: {sim.stderr()}") from None
        if line is None:
            process.wait(timeout=5)
            raise AssertionError(f"serve exited with {process.returncode} before it was ready: {sim.stderr()}")
        sim.lines.append(line)
        kind, fields = parse_line(line)
        if kind == "meter":
            sim.meters.append(MeterLine(fields["serial"], fields["url"], fields["fingerprint"], fields["model"]))
        elif kind == "control":
            sim.control, sim.clock = fields["url"], fields["clock"]
            return sim


SimFactory = Callable[..., Sim]
