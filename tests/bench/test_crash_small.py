"""A few SIGKILLs of ``serve --state-dir`` mid-transaction: no acknowledged record lost, PG contiguous."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import crash

pytestmark = pytest.mark.bench


def test_a_few_kills_lose_nothing_acknowledged(tmp_path: Path) -> None:
    ledger = crash.run(kills=4, state_dir=tmp_path, seed=7, max_delay_s=0.4)
    assert ledger.kills == 4
    assert ledger.failures == []
    assert ledger.acknowledged, "no transaction was acknowledged before the kills"
