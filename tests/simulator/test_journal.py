"""The request journal: a ring buffer with monotonic seq, paging, clearing and listeners."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from iemdcr_twin.simulator.journal import FLUSH_DELAY_S, EveryEntry, Journal, JournalEntry, PollRun, route_of


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
    journal.listeners.append(EveryEntry(lambda entry: heard.append(entry.seq)))
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
    journal = Journal()
    entry = add(journal, status=400, error="bad_tx", body={"TX": "Q"}, method="POST")
    journal.add_finding(entry, "driver sent TX Q")
    data = journal.entries()[0].as_dict()
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


async def test_listeners_hear_a_batch_a_few_ms_later_in_order_and_readers_flush_first() -> None:
    journal = Journal(10)
    heard: list[str] = []
    journal.listeners.append(EveryEntry(lambda entry: heard.append(entry.node)))
    _add(journal, "/counter/v1/ocmf/gw")
    _add(journal, "/counter/v1/ocmf/metervalue")
    assert heard == []  # not yet: the batch is heard when the loop comes round
    assert [entry.node for entry in journal.entries()] == ["gw", "metervalue"]
    assert heard == ["gw", "metervalue"]  # reading the journal flushed it
    _add(journal, "/counter/v1/ocmf/user")
    await asyncio.sleep(0)
    assert heard == ["gw", "metervalue"]  # not at the next loop pass either: batches are a few ms apart
    await asyncio.sleep(FLUSH_DELAY_S * 2)  # the flush timer is due first
    assert heard == ["gw", "metervalue", "user"]


def test_without_an_event_loop_listeners_hear_at_once() -> None:
    journal = Journal(10)
    heard: list[int] = []
    journal.listeners.append(EveryEntry(lambda entry: heard.append(entry.seq)))
    _add(journal, "/counter/v1/ocmf/gw")
    assert heard == [1]


class Recorder:
    """A listener that keeps what it heard: ("entry", seq) or ("polls", first seq, times, latencies)."""

    def __init__(self) -> None:
        self.heard: list[tuple[Any, ...]] = []

    def on_entry(self, entry: JournalEntry) -> None:
        self.heard.append(("entry", entry.seq))

    def on_polls(self, run: PollRun) -> None:
        self.heard.append(("polls", run.first_seq, list(run.sim_times), list(run.latencies_ms)))
        assert [entry.seq for entry in run.entries()] == list(range(run.first_seq, run.last_seq + 1))


POLL = route_of("GET", "/counter/v1/ocmf/metervalue")
GW = route_of("POST", "/counter/v1/ocmf/gw")


async def test_successful_polls_are_heard_as_runs_and_everything_else_as_entries() -> None:
    journal = Journal(100)
    recorder = Recorder()
    journal.listeners.append(recorder)
    for t in (1.0, 2.0):
        journal.record(POLL, t, 0.0, None, 200, None, t / 10)
    journal.record(GW, 3.0, 0.0, {"CT": "EVSEID"}, 200, None, 0.3)
    journal.record(POLL, 4.0, 0.0, None, 503, "network_status", 0.4)  # not a successful poll
    journal.record(POLL, 5.0, 0.0, None, 200, "network_malformed", 0.5)  # a 200 with a network fault: neither
    journal.record(POLL, 6.0, 0.0, None, 200, None, 0.6)
    journal.flush()
    assert recorder.heard == [
        ("polls", 1, [1.0, 2.0], [0.1, 0.2]),
        ("entry", 3),
        ("entry", 4),
        ("entry", 5),
        ("polls", 6, [6.0], [0.6]),
    ]


async def test_a_run_across_the_ring_wrap_is_heard_whole_and_in_order() -> None:
    journal = Journal(4)
    for t in range(3):  # nobody listens yet: these are not heard
        journal.record(POLL, float(t), 0.0, None, 200, None, 0.0)
    recorder = Recorder()
    journal.listeners.append(recorder)
    for t in range(3, 7):  # seqs 4..7 sit in slots 3, 0, 1, 2
        journal.record(POLL, float(t), 0.0, None, 200, None, 0.0)
    journal.flush()
    assert recorder.heard == [("polls", 4, [3.0, 4.0, 5.0, 6.0], [0.0] * 4)]


async def test_entries_nobody_heard_yet_are_heard_before_the_ring_drops_them() -> None:
    journal = Journal(3)
    recorder = Recorder()
    journal.listeners.append(recorder)
    journal.record(GW, 0.0, 0.0, {}, 200, None, 0.0)
    for t in range(1, 6):
        journal.record(POLL, float(t), 0.0, None, 200, None, 0.0)
    early = [seq for item in recorder.heard for seq in _seqs(item)]
    assert early and early == list(range(1, len(early) + 1))  # heard before the loop came round: not lost
    journal.flush()
    assert [seq for item in recorder.heard for seq in _seqs(item)] == [1, 2, 3, 4, 5, 6]


def _seqs(item: tuple[Any, ...]) -> list[int]:
    return [item[1]] if item[0] == "entry" else list(range(item[1], item[1] + len(item[2])))


def test_findings_stay_with_their_entry_until_the_ring_drops_it() -> None:
    journal = Journal(2)
    entry = journal.add(0.0, 0.0, "POST", "/counter/v1/ocmf/gw", {}, 200, None, 0.0)
    journal.add_finding(entry, "gw_repeated")
    journal.add_finding(entry, "gw_repeated")  # once per code
    assert journal.entries()[0].findings == ["gw_repeated"]
    journal.record(POLL, 1.0, 0.0, None, 200, None, 0.0)
    assert journal.entries()[0].findings == ["gw_repeated"]
    journal.record(POLL, 2.0, 0.0, None, 200, None, 0.0)  # drops seq 1
    assert [e.seq for e in journal.entries()] == [2, 3]
    assert all(e.findings == [] for e in journal.entries())
    with pytest.raises(KeyError, match="1 is not in the journal"):
        journal.entry(1)


def test_clear_drops_findings_and_entries_but_keeps_listening() -> None:
    journal = Journal(5)
    recorder = Recorder()
    journal.listeners.append(recorder)
    entry = journal.add(0.0, 0.0, "POST", "/counter/v1/ocmf/gw", {}, 200, None, 0.0)
    journal.add_finding(entry, "x")
    journal.clear()
    assert recorder.heard == [("entry", 1)]  # heard before it was cleared
    journal.record(GW, 1.0, 0.0, {}, 200, None, 0.0)
    assert [(e.seq, e.findings) for e in journal.entries()] == [(2, [])]
