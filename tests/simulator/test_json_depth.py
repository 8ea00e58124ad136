"""The nesting-depth check both APIs run before parsing a body (meter-api.md §1: deeper than 32 is 400)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.json_depth import MAX_JSON_DEPTH, nesting_exceeds

# strings full of what could fool a scan: brackets, quotes, backslashes, and text after them
TRICKY_TEXT = st.text(alphabet='[]{}"\\,:ab\u00e9\n', max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None, derandomize=True)
@given(value=JSON_VALUES, limit=st.integers(0, 6), ascii_only=st.booleans())
def test_the_scan_agrees_with_the_parsed_depth(value: Any, limit: int, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_exceeds(raw, limit) == (depth(value) > limit)


@pytest.mark.parametrize(
    ("raw", "deep"),
    [
        (b"[" * 32 + b"]" * 32, False),
        (b"[" * 33 + b"]" * 33, True),
        (b"{" + b'"a":{' * 32 + b"}" * 33, True),
        (b'{"a":"' + b"[" * 100 + b'"}', False),  # brackets in a string do not count
        (b'{"a":"\\"' + b"[" * 100 + b'"}', False),  # nor after an escaped quote
        (b'{"a":"\\\\"' + b",[" * 40 + b"]" * 40 + b"}", True),  # an escaped backslash ends the string
        (b"[" * 980 + b"]" * 980, True),
    ],
)
def test_examples(raw: bytes, deep: bool) -> None:
    assert nesting_exceeds(raw) == deep
    assert MAX_JSON_DEPTH == 32
