from __future__ import annotations

import pytest

from iemdcr_twin.simulator.scenario.durations import format_duration, parse_duration


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
