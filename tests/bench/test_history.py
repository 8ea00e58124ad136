"""``bench.history`` times the start-up check on a history that passes it: every copy keeps its PG in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import history
from iemdcr_twin.simulator.store import RECORDS_DIR, FileMemory

pytestmark = pytest.mark.bench


def test_the_history_it_times_passes_the_start_up_check(tmp_path: Path) -> None:
    history.make_history(tmp_path, 5)
    files = sorted((tmp_path / history.SERIAL / RECORDS_DIR).iterdir())
    assert [name.name.rsplit("-", 1)[1] for name in files] == [f"T{pg:010d}.json" for pg in range(1, 6)]
    for pg, path in enumerate(files, start=1):
        stored = json.loads(path.read_text())
        assert stored["pagination"] == pg and f'"PG":"T{pg}"' in stored["ocmf"]
    memory = FileMemory(tmp_path, history.SERIAL)
    try:
        assert memory.load() is not None  # the check reads all five and refuses none
    finally:
        memory.close()
    result = history.run(records=5, repeat=1)
    assert result["history_check_s"] > 0
