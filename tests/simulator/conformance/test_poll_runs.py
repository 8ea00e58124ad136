"""Polls heard as runs (``PollRun``) judge exactly as polls heard one entry at a time."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.conformance.checks import PollingRate, ReinitAfterPowerCycle
from iemdcr_twin.simulator.conformance.situation import Situation
from iemdcr_twin.simulator.conformance.verdicts import CheckState, Finding
from iemdcr_twin.simulator.journal import EveryEntry, Journal, JournalEntry, PollRun, route_of

POLL = route_of("GET", "/counter/v1/ocmf/metervalue")
USER = route_of("POST", "/counter/v1/ocmf/user")

# one request: (seconds since the previous one, status, route), or a clock jump / power event between requests
step = st.one_of(
    st.tuples(st.floats(0.0, 8.0), st.sampled_from([200, 200, 200, 503]), st.sampled_from([POLL, POLL, USER])),
    st.sampled_from(["jump", "power"]),
)


class Judge:
    """A PollingRate and a ReinitAfterPowerCycle on one situation, keeping every finding as (code, seq)."""

    def __init__(self, runs: bool) -> None:
        self.found: list[tuple[str, int]] = []
        self.situation = Situation()
        self.checks = [PollingRate(self._flag), ReinitAfterPowerCycle(self._flag)]
        self.runs = runs

    def _flag(self, state: CheckState, finding: Finding, entry: JournalEntry | None) -> None:
        self.found.append((finding.code, -1 if entry is None else entry.seq))

    def on_entry(self, entry: JournalEntry) -> None:
        for check in self.checks:
            check.on_entry(self.situation, entry)

    def on_polls(self, run: PollRun) -> None:
        for check in self.checks:
            check.on_polls(self.situation, run)

    def event(self, kind: str, t: float) -> None:
        if kind == "jump":
            self.situation.jumps += 1
        else:
            for check in self.checks:
                check.on_power(self.situation, True, t)
            self.situation.power(True)


def judge(steps: list[Any], runs: bool) -> list[tuple[str, int]]:
    journal, judge_ = Journal(1000), Judge(runs)
    journal.listeners.append(judge_ if runs else EveryEntry(judge_.on_entry))
    t = 0.0
    for item in steps:
        if isinstance(item, str):
            journal.flush()  # the monitor flushes before a meter event or a jump is applied
            judge_.event(item, t)
            continue
        gap, status, route = item
        t += gap
        journal.record(route, t, 0.0, None, status, None if status == 200 else "x", 0.1)
    journal.flush()
    return judge_.found


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
async def test_runs_find_what_single_entries_find(steps: list[Any]) -> None:
    assert judge(steps, runs=True) == judge(steps, runs=False)


async def test_a_storm_and_a_gap_inside_one_run_are_found_on_their_own_polls() -> None:
    storm = [(0.05, 200, POLL)] * 12
    found = judge([(1.0, 200, POLL), *storm, (6.0, 200, POLL)], runs=True)
    assert found == [("poll_too_fast", 11), ("poll_gap", 14)]  # the 11th poll within 2 s; 6 s after the 13th
