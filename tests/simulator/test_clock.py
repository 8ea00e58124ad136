"""The simulation clock: real and virtual modes, rate, advance, sleepers, auto-jump (control-api.md §4)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from iemdcr_twin.simulator.clock import EARLIEST_S, LATEST_S, ClockError, SimClock
from iemdcr_twin.simulator.model.timefmt import TM_END_S, TM_FIRST_S, format_tm, parse_tm
from iemdcr_twin.simulator.scenario.vclock import ScenarioClock
from tests.support.clock import FakeTime

WALL0 = 1_750_000_000.0
GUARD_S = 60.0  # a guard against a hang, never a measure of speed


def fake_clock(mode: str = "real", rate: float = 1.0, epoch: float | None = None) -> tuple[SimClock, FakeTime]:
    """A clock over a monotonic source that only moves when told to (from 100.0), and a wall clock drawn from it."""
    mono = FakeTime(100.0)
    clock = SimClock(mode, rate, epoch, wall=lambda: WALL0 + mono.t - 100.0, monotonic=mono)  # type: ignore[arg-type]
    return clock, mono


# ---- reading and setting -----------------------------------------------------------------------------


def test_real_mode_follows_wall_time() -> None:
    clock, mono = fake_clock()
    assert (clock.mode, clock.rate) == ("real", 1.0)
    assert clock.now() == WALL0
    mono.t += 12.5
    assert clock.now() == WALL0 + 12.5


def test_real_clock_without_injection_is_host_time() -> None:
    before = time.time()
    clock = SimClock()
    now = clock.now()
    after = time.time()
    assert before <= now <= after  # read from the host clock (an ordering, not a measure of speed)


def test_virtual_mode_starts_at_epoch_and_runs_at_its_rate() -> None:
    clock, mono = fake_clock("virtual", 2.0, epoch=1_000_000.0)
    assert clock.now() == 1_000_000.0
    mono.t += 10
    assert clock.now() == 1_000_020.0
    clock.set(rate=0.5)
    mono.t += 10
    assert clock.now() == 1_000_025.0


def test_virtual_mode_defaults_to_now() -> None:
    clock, _ = fake_clock("virtual")
    assert clock.now() == WALL0


def test_frozen_virtual_clock_starts_exactly_at_epoch() -> None:
    """Regression: the constructor ran at rate 1 for a moment, so a frozen clock started a few µs late."""
    assert SimClock("virtual", 0.0, epoch=1_234.5).now() == 1_234.5
    assert SimClock("virtual", 0.0, epoch=0.0).now() == 0.0


def test_rate_zero_freezes_time_and_only_advance_moves_it() -> None:
    clock, mono = fake_clock("virtual", 0.0)
    start = clock.now()
    mono.t += 3600
    assert clock.now() == start
    clock.advance(90)
    assert clock.now() == start + 90
    assert clock.jumps == 1


def test_advance_in_real_mode_raises_clock_not_virtual() -> None:
    clock, _ = fake_clock()
    before = clock.now()
    with pytest.raises(ClockError) as error:
        clock.advance(10)
    assert error.value.code == "clock_not_virtual"
    assert isinstance(error.value, ValueError)
    assert clock.now() == before


@pytest.mark.parametrize("seconds", [0, -5, float("nan")])
def test_advance_needs_a_positive_number(seconds: float) -> None:
    clock, _ = fake_clock("virtual", 0.0)
    before = clock.now()
    with pytest.raises(ClockError) as error:
        clock.advance(seconds)
    assert error.value.code == "bad_seconds"
    assert clock.now() == before


def test_real_mode_refuses_another_rate() -> None:
    clock, _ = fake_clock()
    with pytest.raises(ClockError) as error:
        clock.set("real", 2.0)
    assert error.value.code == "clock_not_virtual"
    assert clock.rate == 1.0


@pytest.mark.parametrize("rate", [-1.0, float("nan"), 2_000_000.0])
def test_bad_rate_is_refused_and_changes_nothing(rate: float) -> None:
    clock, _ = fake_clock("virtual", 3.0)
    with pytest.raises(ClockError) as error:
        clock.set("virtual", rate)
    assert error.value.code == "bad_rate"
    assert (clock.mode, clock.rate) == ("virtual", 3.0)


def test_bad_mode_is_refused() -> None:
    clock, _ = fake_clock()
    with pytest.raises(ClockError) as error:
        clock.set("sundial")  # type: ignore[arg-type]
    assert error.value.code == "bad_mode"
    assert clock.mode == "real"


def test_switching_virtual_to_real_continues_from_simulated_time() -> None:
    clock, mono = fake_clock("virtual", 0.0)
    clock.advance(7200)
    ahead = clock.now()
    clock.set("real")
    assert (clock.mode, clock.rate) == ("real", 1.0)
    assert clock.now() == ahead
    mono.t += 1
    assert clock.now() == ahead + 1


def test_time_never_goes_backwards_across_mode_and_rate_changes() -> None:
    clock, mono = fake_clock("virtual", 5.0)
    seen = clock.now()
    for mode, rate in [("virtual", 0.0), ("real", None), ("virtual", 100.0), ("virtual", None), ("real", 1.0)]:
        mono.t += 0.5
        before = clock.now()
        clock.set(mode, rate)  # type: ignore[arg-type]
        assert clock.now() == before >= seen
        seen = before


def test_real_to_virtual_keeps_rate_one_and_time() -> None:
    clock, mono = fake_clock()
    mono.t += 5
    before = clock.now()
    clock.set("virtual")
    assert (clock.mode, clock.rate, clock.now()) == ("virtual", 1.0, before)


def test_as_dict() -> None:
    clock, _ = fake_clock("virtual", 0.0)
    assert clock.as_dict() == {"mode": "virtual", "rate": 0.0, "now": WALL0, "pending_sleepers": 0}


# ---- sleeping ----------------------------------------------------------------------------------------


async def spin(times: int = 5) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def test_advance_wakes_sleepers_whose_deadline_passed() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    short = asyncio.create_task(clock.sleep(10))
    long = asyncio.create_task(clock.sleep(100))
    await spin()
    assert not short.done() and not long.done()
    assert clock.next_deadline() == 10.0
    clock.advance(5)
    await spin()
    assert not short.done()
    clock.advance(5)
    await spin()
    assert short.done() and not long.done()
    clock.advance(1000)
    await spin()
    assert long.done()
    assert clock.next_deadline() is None


async def test_sleep_zero_returns_at_once() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    await asyncio.wait_for(clock.sleep(0), GUARD_S)
    await asyncio.wait_for(clock.sleep(-1), GUARD_S)


async def test_sleep_runs_at_the_rate() -> None:
    clock = SimClock("virtual", 10_000.0, epoch=0.0)
    await asyncio.wait_for(clock.sleep(50), GUARD_S)  # woken by the rate alone: nothing advances the clock
    assert clock.now() >= 50.0
    assert clock.jumps == 0


async def test_a_sleeper_at_rate_zero_wakes_only_by_advance() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    sleeper = asyncio.create_task(clock.sleep(50))
    await spin()
    assert not sleeper.done() and clock.now() == 0.0
    clock.advance(50)
    await asyncio.wait_for(sleeper, GUARD_S)
    assert clock.now() == 50.0


async def test_raising_the_rate_reschedules_a_waiting_sleeper() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    sleeper = asyncio.create_task(clock.sleep(100))
    await spin()
    clock.set(rate=100_000.0)
    await asyncio.wait_for(sleeper, GUARD_S)
    assert clock.now() >= 100.0


async def test_cancelled_sleeper_is_forgotten() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    sleeper = asyncio.create_task(clock.sleep(10))
    other = asyncio.create_task(clock.sleep(20))
    await spin()
    sleeper.cancel()
    await spin()
    assert clock.next_deadline() == 20.0
    clock.advance(20)
    await spin()
    assert other.done() and sleeper.cancelled()


async def test_sleepers_wake_in_deadline_order() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    woken: list[int] = []

    async def sleeper(seconds: int) -> None:
        await clock.sleep(seconds)
        woken.append(seconds)

    tasks = [asyncio.create_task(sleeper(seconds)) for seconds in (30, 10, 20)]
    await spin()
    for _ in range(3):
        clock.advance(10)
        await spin()
    await asyncio.gather(*tasks)
    assert woken == [10, 20, 30]


# ---- auto-jump ---------------------------------------------------------------------------------------


async def test_autojump_makes_an_hour_take_milliseconds() -> None:
    clock = SimClock("virtual", 1.0, epoch=0.0)
    jumper = asyncio.create_task(clock.autojump(0.001))
    try:
        await asyncio.wait_for(clock.sleep(3600), GUARD_S)
        assert clock.now() >= 3600.0
        assert clock.jumps == 1  # the hour passed by one jump to the deadline, not by waiting at rate 1
    finally:
        jumper.cancel()


async def test_autojump_jumps_exactly_to_each_deadline_in_turn() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    jumper = asyncio.create_task(clock.autojump(0.001))
    seen: list[float] = []
    try:
        for seconds in (7200, 10, 0.5):
            await asyncio.wait_for(clock.sleep(seconds), GUARD_S)
            seen.append(clock.now())
    finally:
        jumper.cancel()
    assert seen == [7200.0, 7210.0, 7210.5]


async def test_autojump_turns_a_real_clock_virtual() -> None:
    clock = SimClock("real")
    before = clock.now()
    jumper = asyncio.create_task(clock.autojump(0.001))
    try:
        await asyncio.wait_for(clock.sleep(600), GUARD_S)
    finally:
        jumper.cancel()
    assert clock.mode == "virtual"
    assert clock.now() >= before + 600


async def test_autojump_does_not_jump_while_there_is_activity() -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    jumper = asyncio.create_task(clock.autojump(0.05))
    sleeper = asyncio.create_task(clock.sleep(3600))
    try:
        for _ in range(10):
            clock.note_activity()
            await asyncio.sleep(0.002)
        assert not sleeper.done()
        assert clock.now() == 0.0
        await asyncio.wait_for(sleeper, GUARD_S)
        assert clock.now() == 3600.0
    finally:
        jumper.cancel()


async def test_autojump_in_idle_passes_waits_for_quiet_passes_and_never_jumps_while_held() -> None:
    """The tests' clock: idleness judged in passes of the event loop, not in wall time."""
    clock = SimClock("virtual", 0.0, epoch=0.0)
    jumper = asyncio.create_task(clock.autojump(0.0, idle_passes=20))
    sleeper = asyncio.create_task(clock.sleep(3600))
    try:
        for _ in range(200):  # activity every 5th pass: never 20 quiet passes in a row
            for _ in range(5):
                await asyncio.sleep(0)
            clock.note_activity()
        assert not sleeper.done() and clock.now() == 0.0
        with clock.busy():  # held: no jump however quiet the loop is
            for _ in range(200):
                await asyncio.sleep(0)
            assert not sleeper.done() and clock.now() == 0.0
        await asyncio.wait_for(sleeper, GUARD_S)
        assert (clock.now(), clock.jumps) == (3600.0, 1)
    finally:
        jumper.cancel()


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ("before_jump", [(0.0, 0), (10.0, 1)]),  # time is still before the jump
        # The twin checkpoints its registers here, so a jump that added hours is saved before anything else runs.
        ("after_jump", [(10.0, 1), (15.0, 2)]),
    ],
)
async def test_jump_hooks_hear_every_jump_once(hook: str, expected: list[tuple[float, int]]) -> None:
    clock = SimClock("virtual", 0.0, epoch=0.0)
    heard: list[tuple[float, int]] = []
    getattr(clock, hook).append(lambda: heard.append((clock.now(), clock.jumps)))
    clock.advance(10)
    jumper = asyncio.create_task(clock.autojump(0.001))
    try:
        await asyncio.wait_for(clock.sleep(5), GUARD_S)
    finally:
        jumper.cancel()
    clock.set(rate=2)  # a new rate is not a jump
    assert heard == expected


# ---- the times a meter can show ----------------------------------------------------------------------------


def test_the_clock_stays_within_what_a_meter_takes_and_shows_at_any_offset() -> None:
    assert TM_FIRST_S <= EARLIEST_S < LATEST_S < TM_END_S
    for moment in (EARLIEST_S, LATEST_S):
        for offset in (-899, 0, 899):  # the widest offsets TM takes: -14:59 and +14:59
            assert parse_tm(format_tm(moment, offset)) == (moment, offset)


@pytest.mark.parametrize("epoch", [1e12, -1e12, LATEST_S + 1, EARLIEST_S - 1, math.nan, math.inf])
def test_an_epoch_a_meter_cannot_show_is_refused(epoch: float) -> None:
    with pytest.raises(ClockError) as error:
        SimClock("virtual", 0.0, epoch)
    assert error.value.code == "bad_epoch"
    assert "outside the times a meter can show (0002-01-01T00:00:00Z to 9998-12-31T23:59:59Z" in str(error.value)


@pytest.mark.parametrize("epoch", [EARLIEST_S, LATEST_S])
def test_the_ends_of_the_range_are_valid_epochs(epoch: float) -> None:
    assert SimClock("virtual", 0.0, epoch).now() == epoch


def test_an_advance_past_the_end_is_refused_naming_seconds_and_changes_nothing() -> None:
    clock = SimClock("virtual", 0.0, LATEST_S - 100)
    heard: list[str] = []
    clock.before_jump.append(lambda: heard.append("before"))
    clock.after_jump.append(lambda: heard.append("after"))
    for seconds in (315_360_000.0, 100.5, math.inf):
        with pytest.raises(ClockError) as error:
            clock.advance(seconds)
        assert error.value.code == "time_out_of_range"
        assert str(error.value).startswith(f"seconds {seconds:.15g} would take the clock past 9998-12-31T23:59:59Z")
        assert str(error.value).endswith("at most 100 seconds are left")
    assert (clock.now(), clock.jumps, heard) == (LATEST_S - 100, 0, [])
    clock.advance(100)  # up to the end itself
    assert (clock.now(), clock.jumps, heard) == (LATEST_S, 1, ["before", "after"])


async def test_autojump_never_jumps_past_the_end() -> None:
    clock = SimClock("virtual", 0.0, epoch=LATEST_S - 10)
    jumper = asyncio.create_task(clock.autojump(0.0, idle_passes=5))
    late = asyncio.create_task(clock.sleep(20))
    try:
        await asyncio.wait_for(clock.sleep(5), GUARD_S)
        for _ in range(200):
            await asyncio.sleep(0)
        assert not late.done() and not jumper.done()
        assert (clock.now(), clock.jumps) == (LATEST_S - 5, 1)
    finally:
        late.cancel()
        jumper.cancel()


async def test_the_scenario_clock_never_jumps_past_the_end_and_its_jumper_runs_on() -> None:
    """A sleeper due after the end (the driver's next poll) is never woken; the auto-jump loop does not die."""
    clock = ScenarioClock(LATEST_S - 1)
    jumper = asyncio.create_task(clock.run(0.0))
    late = asyncio.create_task(clock.sleep(5))
    try:
        for _ in range(200):
            await asyncio.sleep(0)
        assert not late.done() and not jumper.done()
        assert (clock.now(), clock.jumps) == (LATEST_S - 1, 0)
    finally:
        late.cancel()
        jumper.cancel()


def test_a_running_virtual_clock_stops_at_the_end() -> None:
    """``serve --clock virtual --epoch 253370764000`` then rate 10^6: a wall millisecond later ``now`` would be
    past 9998-12-31T23:59:59Z; it stays there, across later reads and rate changes."""
    clock, mono = fake_clock("virtual", 0.0, 253_370_764_000)
    clock.set("virtual", 1_000_000)
    mono.t += 0.0005
    assert clock.now() == pytest.approx(253_370_764_500) and clock.now() < LATEST_S  # 799 s before the end
    mono.t += 10.0
    assert clock.now() == LATEST_S
    assert clock.as_dict()["now"] == LATEST_S
    clock.set(rate=1.0)  # a rate change continues from the end, never past it nor back
    mono.t += 3600.0
    assert clock.now() == LATEST_S
    with pytest.raises(ClockError, match="at most 0 seconds are left"):
        clock.advance(1)


def test_a_real_clock_stops_at_the_end() -> None:
    clock, mono = fake_clock("real", 1.0, 253_370_764_798)
    mono.t += 1.0
    assert clock.now() == LATEST_S
    mono.t += 1000.0
    assert clock.now() == LATEST_S
    clock.set("virtual", 1000.0)
    mono.t += 1.0
    assert clock.now() == LATEST_S


async def test_a_sleep_begun_at_the_end_lasts_its_length_of_running_time() -> None:
    clock, mono = fake_clock("virtual", 1.0, LATEST_S - 1)
    mono.t += 5.0
    assert clock.now() == LATEST_S
    sleeper = asyncio.create_task(clock.sleep(10))
    await spin()
    mono.t += 9.0
    clock.set(rate=1.0)  # wakes whoever is due
    await spin()
    assert not sleeper.done()
    mono.t += 1.0
    clock.set(rate=1.0)
    await asyncio.wait_for(sleeper, GUARD_S)
    assert clock.now() == LATEST_S
