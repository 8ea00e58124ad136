"""The request journal: a ring buffer with monotonic seq, paging, clearing and listeners."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulator.journal import Journal, JournalEntry


def add(journal: Journal, path: str = "/counter/v1/ocmf/gw", status: int = 200, **extra: Any) -> JournalEntry:
    fields: dict[str, Any] = {
        "sim_time": 10.0,
        "wall_time": 20.0,
        "method": "GET",
        "path": path,
        "body": None,
        "status": status,
        "error": None,
        "latency_ms": 0.5,
    }
    fields.update(extra)
    return journal.add(**fields)


def test_seq_is_monotonic_from_one() -> None:
    journal = Journal()
    assert journal.last_seq == 0 and len(journal) == 0
    entries = [add(journal) for _ in range(3)]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert journal.last_seq == 3 and len(journal) == 3


def test_entries_since_and_limit() -> None:
    journal = Journal()
    for _ in range(5):
        add(journal)
    assert [e.seq for e in journal.entries()] == [1, 2, 3, 4, 5]
    assert [e.seq for e in journal.entries(since=2)] == [3, 4, 5]
    assert [e.seq for e in journal.entries(since=2, limit=2)] == [3, 4]
    assert journal.entries(since=5) == []
    assert journal.entries(limit=0) == []


def test_ring_buffer_drops_the_oldest_but_seq_continues() -> None:
    journal = Journal(size=3)
    for _ in range(5):
        add(journal)
    assert [e.seq for e in journal.entries()] == [3, 4, 5]
    assert len(journal) == 3 and journal.last_seq == 5


def test_clear_keeps_seq_going() -> None:
    journal = Journal()
    add(journal)
    add(journal)
    journal.clear()
    assert journal.entries() == [] and len(journal) == 0
    assert journal.last_seq == 2
    assert add(journal).seq == 3


def test_listeners_hear_every_entry() -> None:
    journal = Journal()
    heard: list[int] = []
    journal.listeners.append(lambda entry: heard.append(entry.seq))
    add(journal)
    add(journal, status=428, error="gw_already_set")
    assert heard == [1, 2]


@pytest.mark.parametrize("size", [0, -1])
def test_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Journal(size)


@pytest.mark.parametrize(
    ("path", "node"),
    [("/counter/v1/ocmf/gw", "gw"), ("/counter/v2/ocmf/transaction", "transaction"), ("/x/", "x"), ("/", "")],
)
def test_node_is_the_last_path_segment(path: str, node: str) -> None:
    assert add(Journal(), path).node == node


def test_as_dict_has_every_field_and_copies_findings() -> None:
    entry = add(Journal(), status=400, error="bad_tx", body={"TX": "Q"}, method="POST")
    entry.findings.append("driver sent TX Q")
    data = entry.as_dict()
    assert data == {
        "seq": 1,
        "sim_time": 10.0,
        "wall_time": 20.0,
        "method": "POST",
        "path": "/counter/v1/ocmf/gw",
        "body": {"TX": "Q"},
        "status": 400,
        "error": "bad_tx",
        "latency_ms": 0.5,
        "findings": ["driver sent TX Q"],
    }
    data["findings"].append("x")
    assert entry.findings == ["driver sent TX Q"]


def _add(journal: Journal, path: str) -> None:
    journal.add(sim_time=0.0, wall_time=0.0, method="GET", path=path, body=None, status=200, error=None, latency_ms=0.1)


async def test_listeners_hear_a_batch_per_loop_pass_in_order_and_readers_flush_first() -> None:
    journal = Journal(10)
    heard: list[str] = []
    journal.listeners.append(lambda entry: heard.append(entry.node))
    _add(journal, "/counter/v1/ocmf/gw")
    _add(journal, "/counter/v1/ocmf/metervalue")
    assert heard == []  # not yet: the batch is heard when the loop comes round
    assert [entry.node for entry in journal.entries()] == ["gw", "metervalue"]
    assert heard == ["gw", "metervalue"]  # reading the journal flushed it
    _add(journal, "/counter/v1/ocmf/user")
    await asyncio.sleep(0)
    assert heard == ["gw", "metervalue", "user"]  # and so did the next loop pass


def test_without_an_event_loop_listeners_hear_at_once() -> None:
    journal = Journal(10)
    heard: list[int] = []
    journal.listeners.append(lambda entry: heard.append(entry.seq))
    _add(journal, "/counter/v1/ocmf/gw")
    assert heard == [1]
