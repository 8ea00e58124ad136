"""Request validation: every malformed body is a 400 that changes nothing (meter-api.md §1, §3.2, §3.7)."""

from __future__ import annotations

from typing import Any

import pytest

from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.model import Refusal
from iemdcr_twin.simulator.model.meter import Meter
from tests.support.clock import FakeTime
from tests.support.meter import USER, ready_meter, user_block


def snapshot(meter: Meter) -> dict[str, Any]:
    state = view.snapshot(meter)
    state.pop("clock")
    return state


def assert_400(meter: Meter, method: str, body: dict[str, Any]) -> str:
    before = snapshot(meter)
    with pytest.raises(Refusal) as refused:
        getattr(meter, method)(body)
    assert refused.value.status == 400
    assert refused.value.code and refused.value.message
    assert refused.value.as_body() == {"error": refused.value.code, "message": refused.value.message}
    assert snapshot(meter) == before
    return refused.value.code


@pytest.mark.parametrize(
    "change",
    [
        {"IS": "true"},
        {"IS": 1},
        {"US": None},
        {"IL": 3},
        {"IL": "A|B"},
        {"IF": "RFID_PLAIN"},
        {"IF": ["A", "B", "C", "D", "E"]},
        {"IF": [1]},
        {"IF": ["a|b"]},
        {"IT": None},
        {"ID": "x" * 65},
        {"ID": 4711},
        {"ID": "04|A1"},
        {"TT": "x" * 251},
        {"TT": 0.49},
        {"TT": "0.49|EUR"},
    ],
)
def test_bad_user_block_is_400(change: dict[str, Any]) -> None:
    meter = ready_meter(FakeTime())
    assert_400(meter, "post_user", {**USER, **change})


@pytest.mark.parametrize("missing", ["IS", "IL", "IF", "IT", "ID", "US"])
def test_user_block_missing_key_is_400(missing: str) -> None:
    meter = ready_meter(FakeTime())
    body = {key: value for key, value in USER.items() if key != missing}
    assert assert_400(meter, "post_user", body) == "missing_key"


def test_user_block_limits_accepted() -> None:
    meter = ready_meter(FakeTime())
    block = {**USER, "ID": "x" * 64, "IF": [], "IL": "", "IT": "", "TT": "t" * 250}
    assert meter.post_user(block) == user_block(block)
    assert meter.post_user({**USER, "ID": ""}).ID == ""


@pytest.mark.parametrize("body", [{}, {"TT": None}, {"TT": 1}, {"TT": "x" * 251}, {"TT": "a|b"}, {"TT": ["x"]}])
def test_bad_tariff_is_400(body: dict[str, Any]) -> None:
    meter = ready_meter(FakeTime())
    assert_400(meter, "post_tariff", body)


def test_tariff_of_250_characters_is_accepted() -> None:
    meter = ready_meter(FakeTime())
    assert meter.post_tariff({"TT": "t" * 250}) == "t" * 250


def test_validation_before_transaction_rule() -> None:
    meter = ready_meter(FakeTime())
    meter.post_receipt({"TX": "B"})
    assert_400(meter, "post_user", {**USER, "ID": 5})
    assert_400(meter, "post_tariff", {"TT": "a|b"})


@pytest.mark.parametrize(
    "body",
    [
        {"CT": "EVSEID", "CI": "", "TM": "2025-06-06T09:26:24,000+0100"},
        {"CT": "x" * 65, "CI": "c", "TM": "2025-06-06T09:26:24,000+0100"},
        {"CT": "EV|SEID", "CI": "c", "TM": "2025-06-06T09:26:24,000+0100"},
        {"CT": "EVSEID", "CI": None, "TM": "2025-06-06T09:26:24,000+0100"},
        {"CT": "EVSEID", "CI": "c"},
        {"CT": "EVSEID", "CI": "c", "TM": 0},
    ],
)
def test_bad_gw_is_400(body: dict[str, Any]) -> None:
    meter = ready_meter(FakeTime())
    meter.power_off()
    meter.power_on()
    assert_400(meter, "post_gw", body)
    assert not meter.gw_written


def test_pipe_is_refused_in_every_stored_text() -> None:
    meter = ready_meter(FakeTime())
    codes = {
        assert_400(meter, "post_tariff", {"TT": "|"}),
        assert_400(meter, "post_user", {**USER, "ID": "|"}),
    }
    assert codes == {"bad_value"}
