"""What the monitor knows about the meter between two requests, as seen on the wire and from meter events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from iemdcr_twin.simulator.journal import JournalEntry

METER_PREFIX = "/counter/"


class TrueTime(StrEnum):
    """Which clock tells the true time a driver's TM writes are judged against (``meter_time_true``)."""

    WALL = "wall_clock"  # a driver with its own clock (any foreign driver): the wall time of the request
    SHARED = "shared_clock"  # the driver reads the twin's clock (the scenario runner): the simulated time
    UNKNOWN = "unknown"  # a replayed recording with synthetic times: not judged


@dataclass
class Situation:
    """Per power cycle facts the checks judge a request against (state *before* the request is applied)."""

    powered: bool = True
    power_epoch: int = 0  # bumped by every power event: intervals across one are not judged for polling
    jumps: int = 0  # the clock's jump counter at the current request
    gw_written: bool = False
    time_set: bool = False
    user_set: bool = False
    tx_open: bool = False  # from the meter's own begin/end events (a fault or power loss ends it too)
    true_time: TrueTime = TrueTime.WALL
    last_signed: float | None = None  # epoch of the meter's last signed reading (the last record's end)
    last_signed_tm: str = ""  # ...as the record shows it

    def apply(self, entry: JournalEntry) -> None:
        """Learn from a request once every check has judged it."""
        if not ok(entry):
            return
        if is_post(entry, "gw"):
            self.gw_written = self.time_set = True
        elif is_post(entry, "datetime"):
            self.time_set = True
        elif is_post(entry, "user"):
            self.user_set = True

    def power(self, on: bool) -> None:
        self.power_epoch += 1
        self.powered = on
        self.tx_open = False
        if on:
            self.gw_written = self.time_set = self.user_set = False


def ok(entry: JournalEntry) -> bool:
    return entry.status == 200


def is_meter_request(entry: JournalEntry) -> bool:
    return entry.path.startswith(METER_PREFIX)


def is_get(entry: JournalEntry, node: str) -> bool:
    return entry.method == "GET" and is_meter_request(entry) and entry.node == node


def is_post(entry: JournalEntry, node: str) -> bool:
    return entry.method == "POST" and is_meter_request(entry) and entry.node == node


def tx_of(entry: JournalEntry) -> str | None:
    """``B`` or ``E`` for a POST receipt with that TX, else None."""
    if is_post(entry, "receipt") and isinstance(entry.body, dict):
        tx = entry.body.get("TX")
        if tx in ("B", "E"):
            return str(tx)
    return None


def body_dict(entry: JournalEntry) -> dict[str, Any]:
    return entry.body if isinstance(entry.body, dict) else {}
