"""``python -m bench.history [--records N] [--repeat R]``: the start-up check of a meter's record history.

``serve --state-dir`` reads every record file of a meter once before the meter is built (``FileMemory.load``,
docs/persistence.md "Damaged state"): each must parse, and its PG must agree in its file name, its
``pagination`` and its signed OCMF. This times that read on N copies of one record signed by a seeded twin,
each under its own PG (the copies' signatures do not verify; the start-up check does not verify signatures).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSpec, Twin
from iemdcr_twin.simulator.store import RECORDS_DIR, FileMemory

from .common import median_iqr

SERIAL = "1ISA0200000001"


def make_history(root: Path, records: int) -> None:
    """A meter's folder in ``root`` with ``records`` signed records (PG 1 to ``records``)."""
    clock = SimClock("virtual", 0.0, epoch=1.75e9)
    twin = Twin(clock, state_dir=root, seed="bench")
    meter = twin.add_meter(MeterSpec(port=0)).meter
    meter.post_gw({"CT": "EVSEID", "CI": "DE*ISA*E0001", "TM": "2025-06-11T09:46:40,000+0100"})
    meter.post_user(
        {"IS": True, "IL": "VERIFIED", "IF": ["RFID_PLAIN"], "IT": "ISO14443", "ID": "04A1B2C3", "US": True}
    )
    meter.post_receipt({"TX": "B"})
    clock.advance(60)
    meter.post_receipt({"TX": "E"})
    twin.close_memories()
    folder = root / SERIAL / RECORDS_DIR
    [signed] = sorted(folder.iterdir())
    stored, fingerprint = json.loads(signed.read_text()), signed.name.split("-")[1]
    signed.unlink()
    for pg in range(1, records + 1):
        copy = dict(stored, pagination=pg, ocmf=stored["ocmf"].replace('"PG":"T1"', f'"PG":"T{pg}"'))
        (folder / f"{pg:08d}-{fingerprint}-T{pg:010d}.json").write_text(json.dumps(copy))


def run(records: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="iemdcr-history-") as temp:
        root = Path(temp)
        make_history(root, records)
        times = []
        for _ in range(repeat):
            memory = FileMemory(root, SERIAL)
            started = time.perf_counter()
            memory.load()
            times.append(time.perf_counter() - started)
            memory.close()
    return median_iqr("history_check_s", times, 3) | {
        "history_check_method": f"median and IQR of {repeat}: FileMemory.load on {records} record files"
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--records", type=int, default=23_174, help="records in the history (the crash runs' 23,174)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(run(args.records, args.repeat)))


if __name__ == "__main__":
    main()
