"""Non-volatile memory on disk: one folder per meter serial, every write atomic (temp, fsync, rename).

A process killed at any instant leaves either the old or the new file, never a torn one. Records are one file
each, written before the state that counts them, so a crash in between is repaired on load
(``model.memory.reconcile``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .model.memory import NonVolatile, SignedRecord

STATE_FILE = "state.json"
RECORDS_DIR = "records"


def write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync, rename, fsync the folder: the new content is durable when this returns."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FileMemory:
    """The ``Memory`` of one meter in ``DIR/<serial>/``."""

    def __init__(self, root: Path, serial: str) -> None:
        self.folder = Path(root) / serial
        self._records = self.folder / RECORDS_DIR
        self._records.mkdir(parents=True, exist_ok=True)
        # Records are named by a running sequence number first, so listing them gives signing order even
        # across factory resets (a fingerprint first would sort keys by their hex, not by their age).
        self._sequence = len(list(self._records.glob("*.json")))

    def load(self) -> tuple[NonVolatile | None, list[SignedRecord]]:
        state_path = self.folder / STATE_FILE
        state = NonVolatile.from_dict(_read_json(state_path)) if state_path.exists() else None
        records = [SignedRecord.from_dict(_read_json(path)) for path in sorted(self._records.glob("*.json"))]
        return state, records

    def save(self, state: NonVolatile) -> None:
        write_atomic(self.folder / STATE_FILE, json.dumps(state.as_dict(), indent=1).encode())

    def add_record(self, record: SignedRecord) -> None:
        name = f"{self._sequence:08d}-{record.key_fingerprint}-T{record.pagination:010d}.json"
        write_atomic(self._records / name, json.dumps(record.as_dict()).encode())
        self._sequence += 1


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path}: unreadable meter memory ({exc})") from exc
    if not isinstance(data, dict):
        raise RuntimeError(f"{path}: meter memory must be a JSON object")
    return data
