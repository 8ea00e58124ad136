"""Crash safety: SIGKILL ``serve --state-dir`` at random moments during transactions, restart, check memory.

``python -m bench.crash --kills N [--state-dir DIR]``. Each round starts the twin on DIR, runs charging
sessions over HTTP (gw, user, B, load, clock advance, E), and a timer SIGKILLs the process at a random moment.
After each restart it checks (meter-api.md §3.1): every acknowledged record is on disk and served with the
same bytes, PG has no gap and no reuse, the import register is not below any signed value, and the live count
lost no more than what changed in the last 10 s of wall time before the kill. Re-running with the same DIR
continues the ledger, so long runs can go in chunks.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import serve
from .http import Client
from .transaction import BASE, GW, USER

DURABILITY_WINDOW_S = 10.0
LEDGER = "crash-ledger.json"


@dataclass
class Ledger:
    """What the client was told: acknowledged PGs (with bytes when read back) and register observations."""

    acknowledged: dict[str, str | None] = field(default_factory=dict)  # "fingerprint/PG" -> OCMF text
    kills: int = 0
    transactions: int = 0
    max_live_loss_mwh: int = 0
    failures: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Ledger:
        return cls(**json.loads(path.read_text())) if path.exists() else cls()

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


class Round:
    """One process lifetime: sessions until the kill lands."""

    def __init__(self, ledger: Ledger, state_dir: Path, rng: random.Random) -> None:
        self.ledger = ledger
        self.rng = rng
        self.served = serve(1, state_dir=state_dir)
        line = self.served.meters[0]
        self.serial, self.fingerprint = line.serial, line.fingerprint
        self.meter = Client(line.url, timeout=5)
        self.control = Client(self.served.control, timeout=5)
        self.observed: list[tuple[float, int]] = []  # (wall time, import mWh) seen by the client

    def snapshot(self) -> dict[str, Any]:
        status, body = self.control.json("GET", f"/api/meters/{self.serial}")
        if status != 200:
            raise RuntimeError(f"snapshot: {status}")
        return body  # type: ignore[no-any-return]

    def call(self, method: str, path: str, body: Any = None, client: Client | None = None) -> tuple[int, bytes]:
        return (client or self.meter).request(method, path, body)

    def session(self) -> None:
        snap = self.snapshot()
        self.observed.append((time.monotonic(), snap["registers"]["import_mWh"]))
        if not snap["gw"]["written"]:
            self.call("POST", BASE + "gw", GW)
        self.call("POST", BASE + "user", USER)
        if snap["transaction"] is None:
            status, raw = self.call("POST", BASE + "receipt", {"TX": "B"})
            if status != 200:
                raise RuntimeError(f"B refused: {status} {raw[:200]!r}")
        path = f"/api/meters/{self.serial}/load"
        self.control.request("PUT", path, {"current_A": self.rng.choice([16.0, 63.0, 125.0]), "voltage_V": 400.0})
        self.control.request("POST", "/api/clock/advance", {"seconds": self.rng.choice([1, 30, 600])})
        self.control.request("PUT", path, {"current_A": 0.0})
        snap = self.snapshot()
        self.observed.append((time.monotonic(), snap["registers"]["import_mWh"]))
        pg = snap["pagination"]["next"]
        status, raw = self.call("POST", BASE + "receipt", {"TX": "E"})
        if status != 200:
            raise RuntimeError(f"E refused: {status} {raw[:200]!r}")
        key = f"{self.fingerprint}/{pg}"
        self.ledger.acknowledged[key] = None
        self.ledger.transactions += 1
        status, raw = self.call("GET", "/counter/v2/ocmf/transaction")
        if status == 200:
            self.ledger.acknowledged[key] = raw.decode()

    def run_until_killed(self, kill_after_s: float) -> float:
        """Sessions until the SIGKILL; returns the monotonic time of the kill."""
        killed_at: list[float] = []

        def kill() -> None:
            killed_at.append(time.monotonic())
            self.served.process.kill()

        timer = threading.Timer(kill_after_s, kill)
        timer.start()
        try:
            while True:
                self.session()
        except (OSError, ConnectionError, RuntimeError) as exc:
            if not killed_at and self.served.process.poll() is None:
                timer.cancel()
                raise RuntimeError(f"session failed while the twin was alive: {exc}") from exc
        finally:
            timer.join()
            self.served.process.wait()
            self.meter.close()
            self.control.close()
            self.served.stop()
        return killed_at[0]


def records_on_disk(state_dir: Path, serial: str) -> dict[str, str]:
    out = {}
    for path in sorted((state_dir / serial / "records").glob("*.json")):
        data = json.loads(path.read_text())
        out[f"{data['key_fingerprint']}/{data['pagination']}"] = data["ocmf"]
    return out


def check_after_restart(ledger: Ledger, state_dir: Path, round_: Round, killed_at: float, before: Round) -> None:
    """The §3.1 checks on a freshly restarted twin."""
    fail = ledger.failures.append
    disk = records_on_disk(state_dir, round_.serial)
    for key, text in ledger.acknowledged.items():
        if key not in disk:
            fail(f"acknowledged record {key} missing on disk")
        elif text is not None and disk[key] != text:
            fail(f"record {key} changed bytes on disk")
    own = sorted(int(key.split("/")[1]) for key in disk if key.startswith(round_.fingerprint + "/"))
    if own and own != list(range(own[0], own[-1] + 1)):
        fail(f"PG gap: {own[:3]}...{own[-3:]}")
    snap = round_.snapshot()
    if own and snap["pagination"]["next"] != own[-1] + 1:
        fail(f"next PG {snap['pagination']['next']} after newest record {own[-1]}")
    if own:
        status, raw = round_.call("GET", "/counter/v2/ocmf/transaction")
        if status != 200 or raw.decode() != disk[f"{round_.fingerprint}/{own[-1]}"]:
            fail("GET transaction does not serve the newest record's bytes")
    imported = snap["registers"]["import_mWh"]
    signed = [_end_mwh(text) for text in disk.values()]
    if signed and imported < max(signed):
        fail(f"import register {imported} mWh below a signed value {max(signed)} mWh")
    durable = [value for moment, value in before.observed if moment <= killed_at - DURABILITY_WINDOW_S]
    if durable and imported < max(durable):
        fail(f"live count fell to {imported} mWh below {max(durable)} seen more than 10 s before the kill")
    seen = max((value for _, value in before.observed), default=imported)
    ledger.max_live_loss_mwh = max(ledger.max_live_loss_mwh, seen - imported)


def _end_mwh(ocmf: str) -> int:
    payload = json.loads(ocmf.split("|")[1])
    return round(float(payload["RD"][-1]["RV"]) * 1_000_000)


def run(kills: int, state_dir: Path, seed: int, max_delay_s: float) -> Ledger:
    path = state_dir / LEDGER
    ledger = Ledger.load(path)
    rng = random.Random(seed + ledger.kills)
    current = Round(ledger, state_dir, rng)
    for _ in range(kills):
        killed_at = current.run_until_killed(rng.uniform(0.0, max_delay_s))
        ledger.kills += 1
        previous, current = current, Round(ledger, state_dir, rng)
        check_after_restart(ledger, state_dir, current, killed_at, previous)
        ledger.save(path)
    current.served.stop()
    return ledger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--state-dir", type=Path, help="reuse to continue a run in chunks (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=0.5, help="kill within this many seconds of start")
    args = parser.parse_args(argv)
    folder = args.state_dir or Path(tempfile.mkdtemp(prefix="crash-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ledger = run(args.kills, folder, args.seed, args.max_delay)
    result = {
        "kills_total": ledger.kills,
        "transactions_acknowledged_total": len(ledger.acknowledged),
        "records_read_back": sum(1 for text in ledger.acknowledged.values() if text is not None),
        "max_live_loss_mWh": ledger.max_live_loss_mwh,
        "failures": ledger.failures,
        "wall_s": round(time.perf_counter() - started, 1),
        "state_dir": str(folder),
    }
    print(json.dumps(result, indent=1))
    if args.state_dir is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if ledger.failures else 0


if __name__ == "__main__":
    sys.exit(main())
