"""The suite's Hypothesis runs are deterministic unless a profile is chosen on purpose (tests/conftest.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings


@pytest.mark.skipif("HYPOTHESIS_PROFILE" in os.environ, reason="a Hypothesis profile was chosen explicitly")
def test_the_default_profile_is_derandomized_without_a_database() -> None:
    current = settings.default
    assert current.derandomize is True
    assert current.database is None
    assert current.deadline is None and current.print_blob is True


def test_the_long_profile_searches_at_random() -> None:
    long = settings.get_profile("long")
    assert long.derandomize is False
    assert long.max_examples >= 1000
