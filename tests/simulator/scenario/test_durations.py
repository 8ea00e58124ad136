from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iemdcr_twin.simulator.scenario.durations import capped_pattern, format_duration, parse_duration
from iemdcr_twin.simulator.scenario.loader import schema
from iemdcr_twin.simulator.schemas import MAX_ADVANCE_S


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("30m", 1800.0), ("2h", 7200.0), ("1.5s", 1.5), ("0ms", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


# " 5s " too: the schema's pattern refuses it, and parse_duration matches the same text in full
@pytest.mark.parametrize("text", ["30", "30 s", "2d", "-1s", "s", "", "1e3s", "1,5s", " 5s "])
def test_parse_duration_refuses_text_without_a_known_unit(text: str) -> None:
    with pytest.raises(ValueError, match="write it with a unit"):
        parse_duration(text)


def test_parse_duration_refuses_bare_numbers() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "0.25s"), (30.0, "30s"), (90.0, "1m 30s"), (7200.0, "2h"), (3660.0, "1h 1m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_schemas_advance_is_capped_where_the_control_api_caps_it_and_wait_alike() -> None:
    assert schema()["$defs"]["advance"]["pattern"] == capped_pattern(MAX_ADVANCE_S, above_zero=True)
    assert schema()["$defs"]["wait"]["pattern"] == capped_pattern(MAX_ADVANCE_S)


durations = st.builds(
    lambda whole, fraction, unit: f"{whole}{fraction}{unit}",
    st.one_of(st.integers(0, 10**13), st.sampled_from([87600, 5256000, 315360000, 315360000000])),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,4}", fullmatch=True)),
    st.sampled_from(["ms", "s", "m", "h"]),
)


@given(text=st.one_of(durations, st.builds(lambda zeros, text: zeros + text, st.sampled_from(["0", "00"]), durations)))
def test_the_capped_pattern_takes_exactly_the_durations_up_to_the_cap(text: str) -> None:
    pattern = re.compile(capped_pattern(MAX_ADVANCE_S))
    assert bool(pattern.fullmatch(text)) == (parse_duration(text) <= MAX_ADVANCE_S)


@given(text=st.one_of(durations, st.builds(lambda zeros, text: zeros + text, st.sampled_from(["0", "00"]), durations)))
def test_the_capped_pattern_above_zero_takes_exactly_the_durations_above_zero_up_to_the_cap(text: str) -> None:
    pattern = re.compile(capped_pattern(MAX_ADVANCE_S, above_zero=True))
    assert bool(pattern.fullmatch(text)) == (0 < parse_duration(text) <= MAX_ADVANCE_S)


@pytest.mark.parametrize("text", ["0s", "00ms", "0.0h", "0.000m", "000.00s"])
def test_the_capped_pattern_above_zero_refuses_every_spelling_of_zero(text: str) -> None:
    assert re.fullmatch(capped_pattern(MAX_ADVANCE_S), text)
    assert not re.fullmatch(capped_pattern(MAX_ADVANCE_S, above_zero=True), text)
