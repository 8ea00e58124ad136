"""Energy integration and registers: exact for constant and ramped load, truncated display (meter-api.md §3.4)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.model.energy import UJ_PER_MWH, Ramp, format_kwh, integrate, parse_kwh, saturate
from tests.support.clock import T0, FakeTime
from tests.support.meter import make_meter, metervalue

MJ = 1e6
RATED = 125.0


def uj(joules: float) -> int:
    return round(joules * 1_000_000)


# ---- the closed-form integral ------------------------------------------------------------------------


def test_constant_load() -> None:
    current, voltage = Ramp.constant(100.0, 0.0), Ramp.constant(400.0, 0.0)
    assert integrate(current, voltage, RATED, 0.0, 360.0) == (14.4 * MJ, 0.0)


def test_empty_or_backwards_interval_is_zero() -> None:
    current, voltage = Ramp.constant(100.0, 0.0), Ramp.constant(400.0, 0.0)
    assert integrate(current, voltage, RATED, 10.0, 10.0) == (0.0, 0.0)
    assert integrate(current, voltage, RATED, 10.0, 5.0) == (0.0, 0.0)


def test_current_ramp() -> None:
    imported, exported = integrate(Ramp(0.0, 100.0, 0.0, 360.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 360.0)
    assert imported == pytest.approx(7.2 * MJ, rel=1e-12)
    assert exported == 0.0


def test_both_ramp_gives_the_quadratic_power_integral() -> None:
    imported, _ = integrate(Ramp(0.0, 100.0, 0.0, 360.0), Ramp(0.0, 400.0, 0.0, 360.0), RATED, 0.0, 360.0)
    assert imported == pytest.approx(40_000 * 360 / 3, rel=1e-12)


def test_ramp_then_hold_is_cut_where_the_ramp_ends() -> None:
    imported, _ = integrate(Ramp(0.0, 100.0, 0.0, 100.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 200.0)
    assert imported == pytest.approx(40_000 * 50 + 40_000 * 100, rel=1e-12)


def test_a_step_inside_the_interval_takes_effect_at_the_step() -> None:
    """Regression: the piece ending at a step (t0 == t1) used to ramp towards the value after the step."""
    step_up = Ramp(0.0, 100.0, 100.0, 100.0)
    assert integrate(step_up, Ramp.constant(400.0, 0.0), RATED, 0.0, 200.0) == (4.0 * MJ, 0.0)
    voltage_step = Ramp(400.0, -400.0, 50.0, 50.0)
    assert integrate(Ramp.constant(100.0, 0.0), voltage_step, RATED, 0.0, 100.0) == (2.0 * MJ, 2.0 * MJ)


def test_a_ramp_of_vanishing_duration_gives_finite_energy() -> None:
    """Regression: a subnormal ramp span made the slope infinite and the energy NaN."""
    imported, exported = integrate(
        Ramp.constant(10.0, 0.0), Ramp(0.0, 2.0, 0.0, 1.1125369292536007e-308), RATED, 0.0, 400.0
    )
    assert (imported, exported) == (pytest.approx(8000.0), 0.0)
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(10.0, 400.0, ramp_s=1e-300)
    time.advance(360)
    assert metervalue(meter)["RD"][0]["RV"] == "00000000.400"


def test_current_ramp_crossing_zero_splits_import_and_export() -> None:
    imported, exported = integrate(Ramp(100.0, -100.0, 0.0, 360.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 360.0)
    assert imported == pytest.approx(3.6 * MJ, rel=1e-12)
    assert exported == pytest.approx(3.6 * MJ, rel=1e-12)


def test_voltage_ramp_crossing_zero_splits_import_and_export() -> None:
    imported, exported = integrate(Ramp.constant(100.0, 0.0), Ramp(400.0, -400.0, 0.0, 360.0), RATED, 0.0, 360.0)
    assert imported == pytest.approx(3.6 * MJ, rel=1e-12)
    assert exported == pytest.approx(3.6 * MJ, rel=1e-12)


def test_asymmetric_zero_crossing() -> None:
    # 100 A -> -50 A over 300 s: zero at 200 s; import 100*400*200/2, export 50*400*100/2.
    imported, exported = integrate(Ramp(100.0, -50.0, 0.0, 300.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 300.0)
    assert imported == pytest.approx(4.0 * MJ, rel=1e-12)
    assert exported == pytest.approx(1.0 * MJ, rel=1e-12)


def test_saturation_at_rated_current() -> None:
    assert saturate(200.0, RATED) == RATED
    assert saturate(-200.0, RATED) == -RATED
    assert saturate(12.5, RATED) == 12.5
    imported, _ = integrate(Ramp.constant(200.0, 0.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 360.0)
    assert imported == pytest.approx(125 * 400 * 360, rel=1e-12)
    _, exported = integrate(Ramp.constant(-200.0, 0.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 360.0)
    assert exported == pytest.approx(125 * 400 * 360, rel=1e-12)


def test_ramp_through_the_rating_saturates_from_the_crossing() -> None:
    # 0 -> 250 A over 360 s crosses 125 A at 180 s: a triangle, then a rectangle at 125 A.
    imported, _ = integrate(Ramp(0.0, 250.0, 0.0, 360.0), Ramp.constant(400.0, 0.0), RATED, 0.0, 360.0)
    assert imported == pytest.approx(125 * 400 * 180 / 2 + 125 * 400 * 180, rel=1e-12)


def test_ramp_from_plus_to_minus_beyond_the_rating() -> None:
    # 250 -> -250 A over 400 s: saturated +125 for 100 s, linear to -125 over 200 s, saturated for 100 s.
    imported, exported = integrate(Ramp(250.0, -250.0, 0.0, 400.0), Ramp.constant(1.0, 0.0), RATED, 0.0, 400.0)
    assert imported == pytest.approx(125 * 100 + 125 * 100 / 2, rel=1e-12)
    assert exported == pytest.approx(imported, rel=1e-12)


ramps = st.builds(
    lambda a, b, t0, d: Ramp(a, b, t0, t0 + d),
    st.floats(-300, 300),
    st.floats(-300, 300),
    st.floats(0, 100),
    st.floats(0, 200),
)


@settings(max_examples=150, deadline=None)
@given(
    current=ramps,
    voltage=ramps,
    cuts=st.lists(st.floats(0, 400), max_size=30),
)
def test_splitting_an_interval_never_changes_the_integral(current: Ramp, voltage: Ramp, cuts: list[float]) -> None:
    whole = integrate(current, voltage, RATED, 0.0, 400.0)
    points = sorted({0.0, 400.0, *cuts})
    parts = [integrate(current, voltage, RATED, a, b) for a, b in itertools.pairwise(points)]
    scale = 300 * 300 * 400
    assert sum(part[0] for part in parts) == pytest.approx(whole[0], abs=scale * 1e-12)
    assert sum(part[1] for part in parts) == pytest.approx(whole[1], abs=scale * 1e-12)
    assert whole[0] >= 0 and whole[1] >= 0


smooth_ramps = st.builds(
    lambda a, b, t0, d: Ramp(a, b, t0, t0 + d),
    st.floats(-300, 300),
    st.floats(-300, 300),
    st.floats(0, 100),
    st.floats(5, 200),
)


@settings(max_examples=60, deadline=None)
@given(current=smooth_ramps, voltage=smooth_ramps)
def test_integral_matches_numeric_quadrature(current: Ramp, voltage: Ramp) -> None:
    steps = 2000
    width = 400.0 / steps
    imported = exported = 0.0
    for k in range(steps):
        t = (k + 0.5) * width
        power = saturate(current.at(t), RATED) * voltage.at(t) * width
        if power >= 0:
            imported += power
        else:
            exported -= power
    exact = integrate(current, voltage, RATED, 0.0, 400.0)
    tolerance = 300 * 300 * 400 * 1e-3
    assert exact[0] == pytest.approx(imported, abs=tolerance)
    assert exact[1] == pytest.approx(exported, abs=tolerance)


# ---- register formatting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mwh", "text"),
    [
        (0, "00000000.000"),
        (999, "00000000.000"),
        (1000, "00000000.001"),
        (1_040_000, "00000001.040"),
        (446_540_999, "00000446.540"),
        (99_999_999_999_999, "99999999.999"),
    ],
)
def test_format_kwh_truncates_and_pads(mwh: int, text: str) -> None:
    assert format_kwh(mwh) == text
    assert len(text) == 12


@given(st.integers(0, 10**14 - 1))
def test_format_kwh_is_percent_012_3f_of_the_truncated_value_and_never_above(mwh: int) -> None:
    text = format_kwh(mwh)
    assert text == f"{mwh // 1_000_000:08d}.{mwh // 1000 % 1000:03d}"
    if mwh < 10**12:  # where a float still holds every Wh exactly
        assert text == "%012.3f" % (math.floor(mwh / 1000) / 1000)
    assert parse_kwh(text) <= mwh < parse_kwh(text) + 1000
    assert parse_kwh(format_kwh(parse_kwh(text))) == parse_kwh(text)


# ---- the meter's registers ---------------------------------------------------------------------------


def registers(meter: object) -> tuple[str, str]:
    value = metervalue(meter)  # type: ignore[attr-defined]
    return value["RD"][0]["RV"], value["RD"][1]["RV"]


def test_meter_constant_load_exact() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(100.0, 400.0)
    time.advance(360)
    assert registers(meter) == ("00000004.000", "00000000.000")
    assert meter.registers.import_uj == uj(14.4 * MJ)
    assert meter.registers.import_mwh == 4_000_000


def test_meter_linear_ramp_exact() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(voltage_V=400.0)
    meter.set_load(100.0, ramp_s=360)
    time.advance(180)
    assert metervalue(meter)["I"] == 50.0
    time.advance(180)
    assert metervalue(meter)["I"] == 100.0
    assert meter.registers.import_mwh == 2_000_000
    time.advance(360)
    metervalue(meter)
    assert meter.registers.import_mwh == 6_000_000


def test_meter_ramp_and_hold_with_reads_in_between() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(0.0, 400.0)
    meter.set_load(100.0, 400.0, ramp_s=100)
    for _ in range(20):
        time.advance(10)
        metervalue(meter)
    # 50 s at average 40 kW ... : ramp 100 s averages 20 kW, then 100 s at 40 kW.
    assert meter.registers.import_uj == pytest.approx(uj(2.0 * MJ + 4.0 * MJ), abs=25)


def test_meter_ramp_crossing_zero_fills_both_registers() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(100.0, 400.0)
    meter.set_load(-100.0, ramp_s=360)
    time.advance(360)
    meter.set_load(0.0)
    assert abs(meter.registers.import_mwh - 1_000_000) <= 1
    assert abs(meter.registers.export_mwh - 1_000_000) <= 1
    assert metervalue(meter)["P"] == 0


def test_meter_saturates_at_rated_current_and_raises_nothing() -> None:
    time = FakeTime()
    meter = make_meter(time, profile="iem-dcr-125")
    meter.set_load(500.0, 400.0)
    value = metervalue(meter)
    assert (value["I"], value["P"]) == (125.0, 50_000.0)
    assert value["ST"] == "G" and meter.faults == frozenset()
    time.advance(360)
    assert registers(meter)[0] == "00000005.000"
    assert meter.registers.import_mwh == 5_000_000
    big = make_meter(FakeTime(), profile="iem-dcr-1500", serial="1ISA0215000001")
    big.set_load(-2000.0, 400.0)
    assert metervalue(big)["I"] == -1500.0


def test_remainder_is_carried_across_many_small_reads() -> None:
    """1 W read every 0.1 s: each read adds 0.1 J, far below 1 mWh (3.6 J); an hour is exactly 1 Wh."""
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(1.0, 1.0)
    for k in range(1, 36_001):
        time.t = T0 + k / 10
        metervalue(meter)
    assert meter.registers.import_uj == 3_600_000_000
    assert meter.registers.import_mwh == 1000
    assert registers(meter)[0] == "00000000.001"


def test_display_is_truncated_never_above_the_measured_energy() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(1.0, 1.0)
    time.advance(3599)  # 0.99972 Wh
    assert registers(meter)[0] == "00000000.000"
    time.advance(1)
    assert registers(meter)[0] == "00000000.001"


@settings(max_examples=60, deadline=None)
@given(
    current=st.floats(-200, 200),
    voltage=st.floats(0, 1000),
    reads=st.lists(st.floats(0.001, 50), min_size=1, max_size=60),
)
def test_many_reads_equal_one_read(current: float, voltage: float, reads: list[float]) -> None:
    polled_time, single_time = FakeTime(), FakeTime()
    polled, single = make_meter(polled_time), make_meter(single_time)
    for meter in (polled, single):
        meter.set_load(current, voltage)
    elapsed = 0.0
    for step in reads:
        elapsed += step
        polled_time.t = T0 + elapsed
        metervalue(polled)
    single_time.t = polled_time.t
    metervalue(single)
    assert abs(polled.registers.import_uj - single.registers.import_uj) <= len(reads)
    assert abs(polled.registers.export_uj - single.registers.export_uj) <= len(reads)


actions = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.floats(-300, 300), st.floats(0, 1000), st.floats(0, 600)),
        st.tuples(st.just("advance"), st.floats(0, 3600)),
        st.tuples(st.just("read")),
        st.tuples(st.just("cycle")),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(steps=actions)
def test_registers_never_decrease(steps: list[tuple[object, ...]]) -> None:
    time = FakeTime()
    meter = make_meter(time)
    shown = registers(meter)
    counted = (meter.registers.import_uj, meter.registers.export_uj)
    for step in steps:
        if step[0] == "load":
            _, current, voltage, ramp = step
            meter.set_load(float(current), float(voltage), float(ramp))  # type: ignore[arg-type]
        elif step[0] == "advance":
            time.advance(float(step[1]))  # type: ignore[arg-type]
        elif step[0] == "cycle":
            meter.power_off()
            meter.power_on()
        now = registers(meter)
        assert now[0] >= shown[0] and now[1] >= shown[1]
        assert meter.registers.import_uj >= counted[0] and meter.registers.export_uj >= counted[1]
        shown, counted = now, (meter.registers.import_uj, meter.registers.export_uj)
        assert parse_kwh(now[0]) <= meter.registers.import_uj // UJ_PER_MWH


def test_load_targets_and_omitted_values_keep_their_value() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.set_load(50.0, 400.0)
    meter.set_load(current_A=20.0)
    assert meter.voltage_V == 400.0
    meter.set_load(voltage_V=800.0, ramp_s=10)
    assert meter.current_A == 20.0
    assert meter.registers.load_targets() == {
        "target_current_A": 20.0,
        "target_voltage_V": 800.0,
        "ramp_until": T0 + 10,
    }
    time.advance(5)
    assert meter.voltage_V == 600.0
    meter.set_load(voltage_V=0.0, ramp_s=6)  # a new ramp starts from where the old one is now
    time.advance(3)
    assert meter.voltage_V == 300.0
