"""Hypothesis strategies for fuzzing HTTP apps: methods, paths, headers and bodies, valid-looking or not."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ODD_SEGMENTS = st.one_of(
    st.text(st.characters(codec="ascii", categories=["L", "N", "P", "S"]), min_size=1, max_size=20),
    st.sampled_from(["..", "%00", "%2F", "~", "%ZZ", "a" * 300, "é", "%e9"]),
)
HEADER_NAMES = st.sampled_from(["Content-Type", "Accept", "X-Odd", "Authorization", "Transfer-Encoding-X"])
HEADER_VALUES = st.text(st.characters(codec="ascii", min_codepoint=32, max_codepoint=126), max_size=60)


def bodies(known: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[bytes | None]:
    """No body, JSON built from keys the API knows, any JSON, raw bytes, or a body over the size limit."""

    def with_known_keys(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional={key: known.get(key, JSON_VALUES) for key in keys})

    keyed = with_known_keys(sorted(known)).map(lambda body: json.dumps(body).encode())
    return st.one_of(
        st.none(),
        keyed,
        keyed,
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=200),
        st.sampled_from(
            [b"{", b'{"a":', b"\xff\xfe", b"[]" * 50_000, b" " * 70_000, b'{"x":"' + b"a" * 70_000 + b'"}']
        ),
    )


def paths(known: list[str]) -> st.SearchStrategy[str]:
    """A known path, a known path with an odd segment appended or swapped in, or nonsense."""
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        _odd_paths(known),
    ).map(lambda path: "/" + path.lstrip("/"))  # "//x" would make the test client see a host


def _odd_paths(known: list[str]) -> st.SearchStrategy[str]:
    """Known paths with an odd segment appended or swapped in, or nonsense."""
    return st.one_of(
        st.tuples(st.sampled_from(known), ODD_SEGMENTS).map(lambda p: p[0].rstrip("/") + "/" + p[1]),
        st.tuples(st.sampled_from(known), ODD_SEGMENTS).map(lambda p: p[0].rsplit("/", 1)[0] + "/" + p[1]),
        st.lists(ODD_SEGMENTS, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    )


# Odd bodies, including ones over the meter (8 KiB) and control (64 KiB) limits.
ODD_BODIES = [b"{", b'{"a":', b"\xff\xfe", b"[]" * 50_000, b" " * 70_000, b'{"x":"' + b"a" * 70_000 + b'"}']
# aiohttp's HTTP parser answers methods it does not know with a plain-text 400 before any app code runs.
PARSER_ONLY_METHODS = {"FOO"}
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3)
