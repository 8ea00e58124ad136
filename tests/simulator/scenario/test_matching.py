from __future__ import annotations

from typing import Any

import pytest

from iemdcr_twin.simulator.scenario.matching import (
    WireEntry,
    compare,
    entry_problems,
    is_condition,
    match_subsequence,
    path_matches,
)


def entry(seq: int, method: str, node: str, body: Any = None, status: int = 200, error: str | None = None) -> WireEntry:
    prefix = "/counter/v2/ocmf/" if node == "v2transaction" else "/counter/v1/ocmf/"
    return WireEntry(seq, 0.0, method, prefix + node.removeprefix("v2"), body, status, error)


JOURNAL = [
    entry(1, "GET", "gw"),
    entry(2, "POST", "receipt", {"TX": "E"}, 428, "no_transaction"),
    entry(3, "POST", "user", {"IS": True, "ID": "04A1B2C3", "IF": ["RFID_PLAIN"]}),
    entry(4, "GET", "metervalue"),
    entry(5, "POST", "receipt", {"TX": "B"}, 428, "current_above_threshold"),
    entry(6, "POST", "receipt", {"TX": "B"}, 428, "current_above_threshold"),
    entry(7, "POST", "receipt", {"TX": "B"}),
    entry(8, "GET", "v2transaction", status=404, error="no_record"),
]


def test_ordered_subsequence_skips_unrelated_requests() -> None:
    patterns = [
        {"method": "GET", "path": "gw"},
        {"method": "POST", "path": "user", "body": {"ID": "04A1B2C3"}},
        {"method": "POST", "path": "receipt", "body": {"TX": "B"}, "status": 200},
    ]
    assert match_subsequence(patterns, JOURNAL) is None


def test_order_matters() -> None:
    patterns = [{"method": "POST", "path": "user"}, {"method": "GET", "path": "gw"}]
    problem = match_subsequence(patterns, JOURNAL)
    assert problem is not None
    assert problem.startswith("request [1] GET gw")


def test_times_needs_that_many_matches_in_order() -> None:
    refused_b = {"method": "POST", "path": "receipt", "body": {"TX": "B"}, "status": 428}
    assert match_subsequence([{**refused_b, "times": 2}], JOURNAL) is None
    problem = match_subsequence([{**refused_b, "times": 3}], JOURNAL)
    assert problem is not None
    assert "occurrence 3 of 3" in problem


def test_failure_names_the_closest_request_and_why() -> None:
    problem = match_subsequence([{"method": "POST", "path": "receipt", "body": {"TX": "E"}, "status": 200}], JOURNAL)
    assert problem is not None
    assert "closest: #2" in problem
    assert "status: expected 200, got 428" in problem


def test_body_is_a_subset_and_lists_compare_whole() -> None:
    assert entry_problems({"body": {"IF": ["RFID_PLAIN"]}}, JOURNAL[2]) == []
    assert entry_problems({"body": {"IF": ["RFID_PLAIN", "OCPP_AUTH"]}}, JOURNAL[2]) != []
    assert entry_problems({"body": {"TX": "E"}}, JOURNAL[0]) != []  # a GET has no body


def test_status_and_error_accept_conditions() -> None:
    assert entry_problems({"status": {"gte": 400, "lt": 500}, "error": {"contains": "threshold"}}, JOURNAL[4]) == []
    assert entry_problems({"status": {"in": [200, 425]}}, JOURNAL[4]) != []


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("receipt", "/counter/v1/ocmf/receipt", True),
        ("rec*", "/counter/v1/ocmf/receipt", True),
        ("transaction", "/counter/v2/ocmf/transaction", True),
        ("v2/ocmf/transaction", "/counter/v2/ocmf/transaction", True),
        ("v1/ocmf/transaction", "/counter/v2/ocmf/transaction", False),
        ("/counter/v1/ocmf/gw", "/counter/v1/ocmf/gw", True),
        ("gw", "/counter/v1/ocmf/user", False),
    ],
)
def test_path_matches(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path) is matches


def test_compare_plain_subset_and_conditions() -> None:
    actual = {"a": 1, "b": {"c": "text", "d": [1, 2]}, "e": None, "f": 399.9996}
    assert compare({"a": 1, "b": {"d": [1, 2]}, "e": None}, actual) == []
    assert compare({"f": {"approx": 400}}, actual) == []
    assert compare({"f": {"approx": 400, "tol": 0.0001}}, actual) != []
    assert compare({"b": {"c": {"matches": "^te"}}}, actual) == []
    assert compare({"a": {"gt": 1}}, actual) == ["value.a: expected gt 1, got 1"]
    assert compare({"missing": 1}, actual) == ["value.missing: missing (expected 1)"]
    assert compare({"e": 0}, actual) != []  # None is not 0
    assert compare(True, 1) != []  # booleans are not numbers
    assert compare(2, 2.0) == []


def test_condition_detection() -> None:
    assert is_condition({"gte": 1})
    assert not is_condition({"gte": 1, "other": 2})  # a subset with a key called gte, not a condition
    assert not is_condition({})
