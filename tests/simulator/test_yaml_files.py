"""``yaml_files``: the YAML reading of scenario and fleet files (no key twice, YAML 1.2 floats)."""

from __future__ import annotations

import pytest
import yaml

from iemdcr_twin.simulator import yaml_files


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ("a: 1\na: 2\n", "a", 2, 1),
        ("outer:\n  b: 1\n  c: 2\n  b: 3\n", "b", 4, 2),
        ("- {port: 1, port: 2}\n", "port", 1, 1),
        ("1: x\n1: y\n", 1, 2, 1),
    ],
)
def test_a_key_written_twice_is_refused_naming_the_key_and_both_lines(
    text: str, key: object, line: int, first: int
) -> None:
    with pytest.raises(yaml_files.DuplicateKeyError) as caught:
        yaml_files.load(text)
    assert caught.value.problem == f"key {key!r} appears twice (first on line {first}); write it once"
    assert yaml_files.where(caught.value).startswith(f"line {line}, column ")


def test_merge_keys_may_override_what_they_merge() -> None:
    assert yaml_files.load("base: &b {x: 1, y: 1}\nd:\n  <<: *b\n  x: 2\n")["d"] == {"x": 2, "y": 1}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e3", 1000.0), ("1.0e300", 1.0e300), ("6.02e23", 6.02e23), ("-1E-5", -1e-5), ("+.5e2", 50.0), ("2E+3", 2000.0)],
)
def test_yaml_1_2_floats_are_numbers(text: str, value: float) -> None:
    assert yaml.safe_load(f"v: {text}")["v"] == text  # PyYAML alone (YAML 1.1): a string
    loaded = yaml_files.load(f"v: {text}")["v"]
    assert isinstance(loaded, float) and loaded == value


@pytest.mark.parametrize(("text", "value"), [("123", 123), ("1.5", 1.5), ("1e", "1e"), ("e3", "e3"), ("'1e3'", "1e3")])
def test_other_scalars_read_as_before(text: str, value: object) -> None:
    assert yaml_files.load(f"v: {text}")["v"] == value
    assert type(yaml_files.load(f"v: {text}")["v"]) is type(value)
