"""Meter model: gw, clock, tariff, user, metervalue, identity, switches, factory reset (meter-api.md §2-§6)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iemdcr_twin.simulator.model import PROFILES, GwBlock, RamMemory, Refusal, Switches, UserBlock, get_profile
from iemdcr_twin.simulator.model.timefmt import format_tm, parse_tm
from tests.support.clock import T0, FakeTime
from tests.support.meter import GW, HEALTHY_XC, SERIAL, USER, make_meter, metervalue, ready_meter, user_block

# ---- gw: once per power cycle ------------------------------------------------------------------------


def test_gw_before_first_write_is_empty_with_unknown_time() -> None:
    meter = make_meter(FakeTime())
    assert meter.get_gw() == GwBlock(CT="", CI="", TM=format_tm(T0, 0) + " U")


def test_post_gw_stores_and_answers_the_stored_block() -> None:
    meter = make_meter(FakeTime())
    answer = meter.post_gw(dict(GW))
    assert answer == GwBlock(CT="EVSEID", CI="DE*ISA*E0001", TM="2025-06-06T09:26:24,000+0100 I")
    assert meter.get_gw() == answer
    assert meter.gw_written


def test_second_post_gw_is_refused_and_changes_nothing() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw(dict(GW))
    time.advance(10)
    before = meter.get_gw()
    with pytest.raises(Refusal) as refused:
        meter.post_gw({"CT": "CBIDC", "CI": "other", "TM": "2030-01-01T00:00:00,000+0000"})
    assert (refused.value.status, refused.value.code) == (428, "gw_already_set")
    assert meter.get_gw() == before
    assert meter.get_gw().TM == "2025-06-06T09:26:34,000+0100 I"


@pytest.mark.parametrize(
    "body",
    [
        {"CT": "", "CI": "x", "TM": GW["TM"]},
        {"CT": "EVSEID", "CI": "a|b", "TM": GW["TM"]},
        {"CT": "EVSEID", "CI": "x" * 65, "TM": GW["TM"]},
        {"CT": "EVSEID", "CI": "x", "TM": "2025-06-06 09:26:24"},
        {"CI": "x", "TM": GW["TM"]},
        {"CT": 5, "CI": "x", "TM": GW["TM"]},
    ],
)
def test_malformed_post_gw_is_400_even_when_already_set(body: dict[str, Any]) -> None:
    meter = make_meter(FakeTime())
    with pytest.raises(Refusal) as before_set:
        meter.post_gw(body)
    assert before_set.value.status == 400
    assert not meter.gw_written
    meter.post_gw(dict(GW))
    with pytest.raises(Refusal) as after_set:
        meter.post_gw(body)
    assert after_set.value.status == 400
    assert meter.get_gw().CT == "EVSEID"


@pytest.mark.parametrize("length", [1, 64])
def test_ct_and_ci_accept_1_to_64_characters(length: int) -> None:
    meter = make_meter(FakeTime())
    meter.post_gw({"CT": "C" * length, "CI": "I" * length, "TM": GW["TM"]})
    assert "C" * length == meter.get_gw().CT
    assert "I" * length == meter.get_gw().CI


def test_free_text_ct_is_stored_as_given() -> None:
    meter = make_meter(FakeTime())
    meter.post_gw({"CT": "DC-Test-Charger", "CI": "lab 1", "TM": GW["TM"]})
    assert meter.get_gw().CT == "DC-Test-Charger"


def test_unknown_extra_keys_are_ignored() -> None:
    meter = make_meter(FakeTime())
    assert meter.post_gw({**GW, "XX": [1, 2]}).CT == "EVSEID"


def test_gw_writable_again_after_power_cycle() -> None:
    meter = make_meter(FakeTime())
    meter.post_gw(dict(GW))
    meter.power_off()
    meter.power_on()
    assert meter.get_gw().CT == ""
    assert meter.post_gw({"CT": "CBIDC", "CI": "new", "TM": GW["TM"]}).CT == "CBIDC"


# ---- clock -------------------------------------------------------------------------------------------


def test_clock_unknown_before_set_runs_with_simulation_time() -> None:
    time = FakeTime()
    meter = make_meter(time)
    time.advance(3600)
    assert meter.get_datetime() == format_tm(T0 + 3600, 0) + " U"
    assert meter.get_datetime().endswith("+0000 U")


def test_time_set_by_gw_is_informative_and_advances_with_simulation_time() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw(dict(GW))
    time.advance(3600)
    assert meter.get_datetime() == "2025-06-06T10:26:24,000+0100 I"


def test_time_status_after_set_switch_gives_s() -> None:
    meter = make_meter(FakeTime(), switches=Switches(time_status_after_set="S"))
    assert meter.post_gw(dict(GW)).TM.endswith(" S")
    assert meter.post_datetime({"TM": GW["TM"]}).endswith(" S")


def test_post_datetime_sets_time_and_the_offset_shown_is_the_last_written() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw(dict(GW))
    answer = meter.post_datetime({"TM": "2025-06-06T03:00:00,500-0530"})
    assert answer == "2025-06-06T03:00:00,500-0530 I"
    time.advance(1.25)
    assert meter.get_datetime() == "2025-06-06T03:00:01,750-0530 I"
    assert meter.get_gw().TM == "2025-06-06T03:00:01,750-0530 I"


def test_post_datetime_before_gw_sets_time_and_leaves_gw_writable() -> None:
    meter = make_meter(FakeTime())
    assert meter.post_datetime({"TM": GW["TM"]}) == GW["TM"] + " I"
    assert not meter.gw_written
    meter.post_gw(dict(GW))


def test_outgoing_tm_is_30_characters() -> None:
    meter = make_meter(FakeTime())
    assert len(meter.get_datetime()) == 30
    meter.post_gw(dict(GW))
    assert len(meter.get_datetime()) == 30
    assert len(metervalue(meter)["TM"]) == 30


def test_milliseconds_are_truncated_not_rounded() -> None:
    time = FakeTime()
    meter = make_meter(time)
    meter.post_gw(dict(GW))
    time.advance(0.9995)
    assert meter.get_datetime() == "2025-06-06T09:26:24,999+0100 I"


def test_post_datetime_refused_during_transaction_after_validation() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    with pytest.raises(Refusal) as bad:
        meter.post_datetime({"TM": "nonsense"})
    assert (bad.value.status, bad.value.code) == (400, "bad_time")
    before = meter.get_datetime()
    with pytest.raises(Refusal) as running:
        meter.post_datetime({"TM": "2030-01-01T00:00:00,000+0000"})
    assert (running.value.status, running.value.code) == (428, "transaction_running")
    assert meter.get_datetime() == before


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-06T09:26:24+0100",
        "2025-06-06T09:26:24.000+0100",
        "2025-06-06T09:26:24,000+01:00",
        "2025-06-06T09:26:24,000Z",
        "2025-06-06T09:26:24,00+0100",
        "2025-06-06T09:26:24,000+0100 I",
        "2025-13-06T09:26:24,000+0100",
        "2025-02-30T09:26:24,000+0100",
        "2025-06-06T24:00:00,000+0100",
        "2025-06-06T09:26:60,000+0100",
        "2025-06-06T09:26:24,000+1500",
        "2025-06-06T09:26:24,000+0160",
        "",
        "0001-01-01T00:00:00,000+1400",
        "9999-12-31T23:59:59,999-1400",
    ],
)
def test_bad_tm_is_400_bad_time_and_changes_nothing(text: str) -> None:
    meter = make_meter(FakeTime())
    with pytest.raises(Refusal) as refused:
        meter.post_datetime({"TM": text})
    assert (refused.value.status, refused.value.code) == (400, "bad_time")
    assert meter.get_datetime().endswith("+0000 U")


@pytest.mark.parametrize("value", [None, 1_750_000_000, ["2025-06-06T09:26:24,000+0100"]])
def test_tm_of_wrong_type_is_400(value: object) -> None:
    meter = make_meter(FakeTime())
    with pytest.raises(Refusal) as refused:
        meter.post_datetime({"TM": value})
    assert refused.value.status == 400


def test_missing_tm_is_400() -> None:
    with pytest.raises(Refusal) as refused:
        make_meter(FakeTime()).post_datetime({})
    assert refused.value.status == 400


tm_texts = st.builds(
    lambda y, mo, d, h, mi, s, ms, sign, oh, om: (
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d},{ms:03d}{sign}{oh:02d}{om:02d}"
    ),
    # Up to 2099: past 2^32 s (2106) one float ulp is ~1 µs and the written millisecond can read back 1 less.
    st.integers(1971, 2099),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
    st.sampled_from("+-"),
    st.integers(0, 14),
    st.sampled_from([0, 15, 30, 45]),
)


@given(text=tm_texts, sim=st.floats(1e9, 3e9, allow_nan=False))
def test_written_time_reads_back_exactly(text: str, sim: float) -> None:
    meter = make_meter(FakeTime(sim))
    expected = text.replace("-0000", "+0000")  # the one offset with two spellings is shown as +0000
    assert meter.post_datetime({"TM": text}) == expected + " I"
    epoch, offset = parse_tm(text)
    assert format_tm(epoch, offset) == expected


@pytest.mark.parametrize(
    "text", ["0002-01-01T00:00:00,000+0000", "0100-05-13T16:06:40,000+0100", "0999-12-31T23:59:59,999-1459"]
)
def test_years_before_1000_are_shown_with_four_digits(text: str) -> None:
    assert make_meter(FakeTime()).post_datetime({"TM": text}) == text + " I"


def test_a_meter_time_run_past_the_last_one_it_can_show_stays_there_and_every_read_answers() -> None:
    """docs/fidelity.md: written near the end of the range, then two days on, the meter shows its last time."""
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_datetime({"TM": "9998-12-31T00:00:00,000+0100"})
    time.advance(2 * 86_400)
    last = "9999-01-01T00:59:59,999+0100 I"  # 9998-12-31T23:59:59.999Z at the offset last written
    assert meter.get_datetime() == last
    assert metervalue(meter)["TM"] == last
    assert last == meter.get_gw().TM
    meter.post_receipt({"TX": "B"})
    time.advance(60)
    meter.post_receipt({"TX": "E"})
    assert f'"TM":"{last}"' in meter.get_transaction()  # signed with the time it shows


@given(epoch=st.floats(-1e15, 1e15), offset=st.integers(-899, 899))
def test_formatting_a_meter_time_never_raises(epoch: float, offset: int) -> None:
    text = format_tm(epoch, offset)
    assert parse_tm(text)[1] == offset  # a TM the meter itself would take


# ---- tariff and user ---------------------------------------------------------------------------------


def test_tariff_round_trip_and_empty_default() -> None:
    meter = make_meter(FakeTime())
    assert meter.get_tariff() == ""
    assert meter.post_tariff({"TT": "0.49 EUR/kWh"}) == "0.49 EUR/kWh"
    assert meter.get_tariff() == "0.49 EUR/kWh"
    assert meter.post_tariff({"TT": ""}) == ""


def test_tariff_refused_during_transaction() -> None:
    meter = ready_meter(FakeTime())
    meter.post_receipt({"TX": "B"})
    with pytest.raises(Refusal) as refused:
        meter.post_tariff({"TT": "1 EUR/kWh"})
    assert (refused.value.status, refused.value.code) == (428, "transaction_running")
    assert meter.get_tariff() == "0.49 EUR/kWh"


def test_user_round_trip_and_default() -> None:
    meter = make_meter(FakeTime())
    assert meter.get_user() == UserBlock(IS=False, IL="NONE", IF=(), IT="NONE", ID="", US=False, TT=None)
    assert meter.post_user(dict(USER)) == user_block(USER)
    assert meter.get_user() == user_block(USER)


def test_user_tt_replaces_tariff() -> None:
    meter = ready_meter(FakeTime())
    answer = meter.post_user({**USER, "TT": "0.59 EUR/kWh"})
    assert answer.TT == "0.59 EUR/kWh"
    assert meter.get_tariff() == "0.59 EUR/kWh"


def test_user_without_tt_keeps_tariff() -> None:
    meter = ready_meter(FakeTime())
    meter.post_user(dict(USER))
    assert meter.get_tariff() == "0.49 EUR/kWh"
    assert meter.get_user().TT is None


@pytest.mark.parametrize("flags", [[], ["RFID_PLAIN"], ["RFID_PLAIN", "OCPP_RS", "OCPP_AUTH", "ISO15118_PNC"]])
def test_user_if_accepts_0_to_4_entries(flags: list[str]) -> None:
    meter = make_meter(FakeTime())
    assert tuple(flags) == meter.post_user({**USER, "IF": flags}).IF


def test_user_refused_during_transaction_and_block_unchanged() -> None:
    meter = ready_meter(FakeTime())
    meter.post_receipt({"TX": "B"})
    with pytest.raises(Refusal) as refused:
        meter.post_user({**USER, "ID": "04FFFFFF"})
    assert (refused.value.status, refused.value.code) == (428, "transaction_running")
    assert meter.get_user() == user_block(USER)


def test_unknown_enum_values_are_stored() -> None:
    meter = make_meter(FakeTime())
    block = {**USER, "IL": "SOMETHING", "IF": ["NOT_A_FLAG"], "IT": "WEIRD"}
    assert meter.post_user(block) == user_block(block)


# ---- metervalue, publickey ---------------------------------------------------------------------------


def test_metervalue_key_order_and_shapes_when_idle() -> None:
    meter = make_meter(FakeTime())
    value = metervalue(meter)
    assert list(value) == ["MS", "TM", "EF", "ST", "XT", "RD", "U1", "U2", "U3", "U4", "I", "P", "XS", "XC"]
    assert value["MS"] == SERIAL
    assert (value["EF"], value["ST"], value["XT"]) == ("", "G", False)
    assert value["RD"] == [
        {"RV": "00000000.000", "RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"},
        {"RV": "00000000.000", "RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"},
        {"WV": "00000000.000", "WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"},
        {"WV": "00000000.000", "WI": "transaction_1-b:2.8.e", "WU": "kWh", "WT": "DC"},
    ]
    assert [list(row) for row in value["RD"]] == [["RV", "RI", "RU", "RT"]] * 2 + [["WV", "WI", "WU", "WT"]] * 2
    assert value["U3"] == 0 and value["U4"] == 0
    assert value["XS"] == "0x0000000000000000"
    assert value["XC"] == HEALTHY_XC


def test_metervalue_live_values_and_status_word() -> None:
    time = FakeTime()
    meter = ready_meter(time)
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    value = metervalue(meter)
    assert (value["I"], value["U2"], value["P"]) == (100.0, 400.0, 40000.0)
    assert value["U1"] == pytest.approx(100.0 * 0.0001)
    for key in ("U1", "U2", "U3", "U4", "I", "P"):
        assert isinstance(value[key], int | float) and not isinstance(value[key], bool)
    assert value["XT"] is True
    assert len(value["XS"]) == 18 and value["XS"].startswith("0x")
    assert int(value["XS"], 16) == 0b1111


def test_status_word_bits_gw_and_time() -> None:
    meter = make_meter(FakeTime())
    meter.post_datetime({"TM": GW["TM"]})
    assert int(metervalue(meter)["XS"], 16) == 0b0100
    meter.post_gw(dict(GW))
    assert int(metervalue(meter)["XS"], 16) == 0b0110


def test_metervalue_reports_export_as_negative_current() -> None:
    meter = make_meter(FakeTime())
    meter.set_load(-50.0, 400.0)
    value = metervalue(meter)
    assert (value["I"], value["P"]) == (-50.0, -20000.0)


def test_publickey_is_der_spki_hex_and_stable() -> None:
    meter = make_meter(FakeTime())
    key = meter.get_publickey()
    assert key.SA == "ECDSA-secp256r1-SHA256"
    assert key.PK.startswith("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    assert len(bytes.fromhex(key.PK)) == 91
    assert meter.get_publickey() == key
    assert meter.signer.fingerprint == hashlib.sha256(bytes.fromhex(key.PK)).hexdigest()[:16]


# ---- identity profiles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model", "serial", "rated"),
    [
        ("iem-dcr-125", "IEM-DCR-125-1000-32-00-006-B_000", "1ISA0200000001", 125.0),
        ("iem-dcr-1000", "IEM-DCR-1000-1000-32-00-006-B_000", "1ISA0210000001", 1000.0),
        ("iem-dcr-1500", "IEM-DCR-1500-1000-32-00-006-B_000", "1ISA0215000001", 1500.0),
    ],
)
def test_profiles(name: str, model: str, serial: str, rated: float) -> None:
    profile = get_profile(name)
    assert (profile.MM, profile.default_serial, profile.rated_current_A) == (model, serial, rated)
    assert f"Isabellenhuette {model}" == profile.GI
    assert profile.MV == "Isabellenhuette"
    assert profile.GV == "DU-02.00.12_SU-02.00.08"
    assert profile.first_pagination == 1
    assert profile.serial_plus(0) == serial
    assert profile.serial_plus(41) == serial[:-2] + "42"


def test_unknown_profile_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="iem-dcr-9"):
        get_profile("iem-dcr-9")
    assert set(PROFILES) == {"iem-dcr-125", "iem-dcr-1000", "iem-dcr-1500"}


# ---- switches ----------------------------------------------------------------------------------------


def test_switch_defaults() -> None:
    assert Switches().as_dict() == {
        "v1_transaction": True,
        "time_status_after_set": "I",
        "activation_threshold_A": 1.0,
        "signature_delay_ms": 0,
        "signature_encoding": "der",
        "require_gw_for_transaction": True,
        "response_latency_ms": 0,
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("no_such_switch", True),
        ("v1_transaction", "yes"),
        ("require_gw_for_transaction", 1),
        ("time_status_after_set", "U"),
        ("signature_encoding", "pem"),
        ("activation_threshold_A", -1),
        ("activation_threshold_A", True),
        ("activation_threshold_A", "2"),
        ("signature_delay_ms", 1.5),
        ("signature_delay_ms", -1),
        ("response_latency_ms", False),
    ],
)
def test_bad_switch_is_a_value_error_naming_the_key_and_changes_nothing(key: str, value: object) -> None:
    meter = make_meter(FakeTime())
    before = meter.switches
    with pytest.raises(ValueError, match=key):
        meter.set_switches({"activation_threshold_A": 5.0, key: value})
    assert meter.switches == before


def test_switches_apply_at_run_time() -> None:
    meter = make_meter(FakeTime())
    meter.set_switches({"activation_threshold_A": 2, "signature_delay_ms": 500, "v1_transaction": False})
    assert meter.switches.activation_threshold_A == 2.0
    assert isinstance(meter.switches.activation_threshold_A, float)
    assert meter.switches.signature_delay_ms == 500
    assert meter.switches.v1_transaction is False


def test_switches_from_command_line_text() -> None:
    switches = Switches().updated_from_text(
        ["v1_transaction=off", "activation_threshold_A=2.5", "signature_delay_ms=200", "signature_encoding=raw"]
    )
    assert (switches.v1_transaction, switches.activation_threshold_A) == (False, 2.5)
    assert (switches.signature_delay_ms, switches.signature_encoding) == (200, "raw")
    with pytest.raises(ValueError, match="signature_delay_ms"):
        Switches().updated_from_text(["signature_delay_ms=soon"])
    with pytest.raises(ValueError, match="key=value"):
        Switches().updated_from_text(["v1_transaction"])


# ---- factory reset -----------------------------------------------------------------------------------


def test_factory_reset_gives_a_new_meter_in_the_same_slot() -> None:
    time = FakeTime()
    memory = RamMemory()
    meter = ready_meter(time, memory)
    meter.post_receipt({"TX": "B"})
    meter.set_load(100.0, 400.0)
    time.advance(360)
    meter.set_load(0.0)
    meter.post_receipt({"TX": "E"})
    old_key = meter.get_publickey().PK
    meter.raise_fault("clock_lost")
    meter.factory_reset()
    assert old_key != meter.get_publickey().PK
    assert meter.registers.import_mwh == 0 and meter.registers.export_mwh == 0
    assert meter.registers.next_pagination == 1
    assert meter.faults == frozenset()
    assert meter.get_gw().CT == ""
    with pytest.raises(Refusal) as no_record:
        meter.get_transaction()
    assert no_record.value.code == "no_record"
    assert len(meter.records) == 1 and meter.records[0].key_fingerprint != meter.signer.fingerprint
    assert memory.state is not None and memory.state.next_pagination == 1
    assert memory.state.key_pem == meter.signer.to_pem()
