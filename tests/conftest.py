"""Hypothesis profiles for the whole suite, loaded before any test module builds its settings.

``ci`` (the default) is deterministic: ``derandomize`` derives every example from the test itself, so a landing
never depends on a coin toss, and no example database carries state from one run to the next. A failure prints
its reproduction blob. ``long`` is the separate, randomized search for new counterexamples:

    HYPOTHESIS_PROFILE=long python -m pytest tests/simulator/model/test_state_machine.py

Tests that set their own ``max_examples`` keep it and inherit everything else from the loaded profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2000,
    stateful_step_count=100,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
