"""``meter_time_true``: every TM a driver writes (POST gw, POST datetime) is the true time (scenarios.md §4).

The true time is the clock the driver ought to read (``Situation.true_time``): the wall time at which the
request arrived for a driver with its own clock, the twin's simulated time for a driver that shares it (the
scenario runner), or unknown for a replayed recording, which is then not judged. A TM more than 60 s off is
a FAIL with the skew in the finding's ``detail``; a write that moves the meter's clock back behind its last
signed reading is a WARN (the next record would begin before the previous one ended).
"""

from __future__ import annotations

from datetime import UTC, datetime

from iemdcr_twin.simulator.conformance.checks import Check
from iemdcr_twin.simulator.conformance.situation import Situation, TrueTime, body_dict, is_post, ok
from iemdcr_twin.simulator.conformance.verdicts import Verdict
from iemdcr_twin.simulator.journal import JournalEntry
from iemdcr_twin.simulator.model.errors import Refusal
from iemdcr_twin.simulator.model.timefmt import parse_tm
from iemdcr_twin.simulator.ocmf import payload_of

MAX_SKEW_S = 60.0
TIME_NODES = ("gw", "datetime")


def tm_epoch(tm: object) -> float | None:
    """Epoch seconds of a TM (``2026-07-01T14:00:00,000+0100``, a trailing status letter allowed), or None."""
    if not isinstance(tm, str):
        return None
    text = tm[:-2] if len(tm) > 2 and tm[-2] == " " else tm
    try:
        return parse_tm(text)[0]
    except Refusal:
        return None


def last_reading_tm(record: str | None) -> str | None:
    """The TM of an OCMF record's last reading (its end), or None when the record cannot be read."""
    payload = payload_of(record) if record else None
    try:
        tm = payload["RD"][-1]["TM"] if payload is not None else None
    except (KeyError, IndexError, TypeError):
        return None
    return tm if isinstance(tm, str) else None


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MeterTimeTrue(Check):
    id = "meter_time_true"
    title = "The meter time a driver writes (POST gw, POST datetime) is the true time within 60 s"

    def on_entry(self, s: Situation, entry: JournalEntry) -> None:
        if s.true_time is TrueTime.UNKNOWN or not any(is_post(entry, node) for node in TIME_NODES):
            return
        tm = body_dict(entry).get("TM")
        written = tm_epoch(tm)
        if written is None:
            return  # the meter refused it as bad_time: nothing was written
        self.state.exercised += 1
        true = entry.sim_time if s.true_time is TrueTime.SHARED else entry.wall_time
        skew = written - true
        if abs(skew) > MAX_SKEW_S:
            side = "ahead of" if skew > 0 else "behind"
            clock = "the twin's clock, which the driver shares" if s.true_time is TrueTime.SHARED else "wall clock"
            self.found(
                "time_not_true",
                f"TM {tm} is {abs(skew):.3f} s {side} the true time {_utc(true)} ({clock})",
                entry,
                detail={"skew_s": round(skew, 3), "written": _utc(written), "true_time": _utc(true)},
            )
        if ok(entry) and s.last_signed is not None and written < s.last_signed:
            behind = s.last_signed - written
            self.found(
                "time_behind_record",
                f"TM {tm} moves the meter clock {behind:.3f} s back behind its last signed reading "
                f"({s.last_signed_tm}): the next record would begin before the previous one ended",
                entry,
                verdict=Verdict.WARN,
                detail={"behind_s": round(behind, 3), "last_signed": s.last_signed_tm},
            )
