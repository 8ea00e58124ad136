"""The C++ defects of driver.md §3 (fixes 1-18): each test fails against the C++ module's behaviour."""

from __future__ import annotations

import itertools

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.types import TransactionRequestStatus

from .conftest import MakeDriver
from .fake_meter import HEALTHY, FakeMeter
from .test_driver import make_req
from .vclock import VirtualClock

OK = TransactionRequestStatus.OK
UNEXPECTED = TransactionRequestStatus.UNEXPECTED_ERROR


async def polls_during(meter: FakeMeter, clock: VirtualClock, seconds: float) -> int:
    before = len(meter.requests("GET", "metervalue"))
    await clock.sleep(seconds)
    return len(meter.requests("GET", "metervalue")) - before


async def test_fix01_early_returns_do_not_stop_polling(
    driver: IemDcrDriver, meter: FakeMeter, clock: VirtualClock
) -> None:
    assert (await driver.start_transaction(make_req(evse_id="nope"))).status is TransactionRequestStatus.NOT_SUPPORTED
    meter.xc = "0x0004, 0x00000000, 0x00, 0x00"
    await driver.wait_for("powermeter")
    assert (await driver.start_transaction(make_req())).status is UNEXPECTED
    meter.xc = HEALTHY
    # C++: start_transaction_running stays true after these returns and the live loop never polls again
    assert await polls_during(meter, clock, 5) >= 4
    assert (await driver.start_transaction(make_req())).status is OK


async def test_fix02_empty_ct_string_means_gw_not_set(driver: IemDcrDriver, meter: FakeMeter) -> None:
    for empty in ('""', "null"):
        meter.override("GET", "gw", body=f'{{"CT":{empty},"CI":"","TM":"{meter.tm()}"}}', times=1)
        with driver.subscribe(["reinitialising"]) as reinit:
            response = await driver.start_transaction(make_req())
            event = reinit.get_nowait()
        assert response.status is UNEXPECTED and "Re-init triggered" in (response.error or "")
        assert event is not None and "CT empty" in event.data
        assert not [s for s in meter.requests("POST", "receipt") if s.body == {"TX": "B"}]
        await driver.wait_for("initialised")


async def test_fix03_energy_parses_the_whole_wv_string(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.pad_wv = False
    meter.tx_import_mwh, meter.tx_export_mwh = 1_040, 12_345  # "1.040" and "12.345"
    event = await driver.wait_for("powermeter", lambda e: e.data.energy_Wh_import.total != 0)
    # C++ drops the first character: ".040" -> 40 Wh and "2.345" -> 2345 Wh
    assert event.data.energy_Wh_import.total == 1040.0
    assert event.data.energy_Wh_export.total == 12345.0


async def test_fix04_callers_get_the_detailed_error(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.override("POST", "user", status=400, body='{"error":"bad_request","message":"IL unknown"}')
    response = await driver.start_transaction(make_req())
    assert response.status is UNEXPECTED
    error = response.error or ""
    assert "std::exception" not in error
    assert "POST /counter/v1/ocmf/user answered 400" in error and "IL unknown" in error


async def test_fix05_hanging_meter_times_out_and_recovers(
    make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock
) -> None:
    drv = await make_driver(request_timeout_s=0.05)
    await drv.start()
    await drv.wait_for("initialised")
    meter.override("GET", "metervalue", hang=True)
    raised = await drv.wait_for("communication_fault_raised")
    assert "timeout" in raised.data
    meter.override("GET", "gw", hang=True)
    sent, sim_before = len(meter.seen), clock.now()
    response = await drv.start_transaction(make_req())
    assert response.status is UNEXPECTED  # not initialised: at once, without waiting on the hanging meter
    assert "Init of communication not finished yet" in (response.error or "")
    assert meter.seen[sent:] == [] and clock.now() == sim_before  # nothing sent, no wait
    meter.clear_overrides()
    await drv.wait_for("communication_fault_cleared")
    await drv.wait_for("initialised", include_past=True)
    assert drv.initialised
    meter.override("POST", "user", hang=True)
    response = await drv.start_transaction(make_req())
    assert response.status is UNEXPECTED and "timeout" in (response.error or "")
    assert len(meter.requests("POST", "user")) == 4  # 1 + 3 retries, each ended by the timeout, then it gives up
    assert not [s for s in meter.requests("POST", "receipt") if s.body == {"TX": "B"}]


async def test_fix06_meter_error_state_is_unexpected_error_not_not_supported(
    driver: IemDcrDriver, meter: FakeMeter
) -> None:
    meter.xc = "0x0010, 0x00000000, 0x00, 0x00"
    await driver.wait_for("powermeter", lambda e: driver.status_code != HEALTHY)
    response = await driver.start_transaction(make_req())
    assert response.status is UNEXPECTED  # the C++ docs promise NOT_SUPPORTED
    assert "0x0010" in (response.error or "")


async def test_fix07_failing_datetime_backs_off(make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock) -> None:
    # gw was written by an earlier driver run with the same CT and CI: init writes only the time (fix 17), and
    # that write fails
    meter.ct, meter.ci, meter.gw_written = "EVSEID", "1234", True
    meter.override("POST", "datetime", status=500, body='{"error":"boom"}')
    drv = await make_driver(datetime_resync_interval=1)
    await drv.start()
    await drv.wait_for("initialised")
    await clock.sleep(120)
    tries = [s.at for s in meter.requests("POST", "datetime")]
    # C++ tries every second (~120 times); with backoff: gaps 1, 2, 4, 8, 16, 32, 64
    assert 6 <= len(tries) <= 8, tries
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert all(later >= 1.5 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
    meter.clear_overrides()
    await clock.sleep(140)
    assert meter.requests("POST", "datetime")[-1].at > tries[-1]
    ok_at = meter.requests("POST", "datetime")[-1].at
    await clock.sleep(600)
    assert meter.requests("POST", "datetime")[-1].at == ok_at  # success: next one in an hour


async def test_fix08_start_right_after_init_succeeds(make_driver: MakeDriver, meter: FakeMeter) -> None:
    drv = await make_driver()
    await drv.start()
    await drv.wait_for("initialised")
    assert drv.status_code == HEALTHY  # XC known without waiting for the first loop poll
    assert (await drv.start_transaction(make_req())).status is OK


async def test_fix09_stop_is_robust_to_a_stale_poll(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    first = await driver.stop_transaction("")
    await driver.wait_for("powermeter")
    # Another client begins a transaction right after our poll: our last poll still says idle.
    meter.user = {"ID": "second"}
    meter.xt = True
    assert not driver.transaction_active
    response = await driver.stop_transaction("")
    # C++ trusts the stale flag, skips E and returns the previous record, leaving the transaction open.
    assert response.status is OK
    assert response.signed_meter_value != first.signed_meter_value
    assert response.signed_meter_value is not None and '"ID":"second"' in response.signed_meter_value.signed_meter_data
    assert not meter.xt and len(meter.records) == 2


async def test_fix09_e_failing_while_running_is_an_error(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    meter.override("POST", "receipt", status=503, body='{"error":"meter_error"}')
    response = await driver.stop_transaction("")
    assert response.status is UNEXPECTED and "503" in (response.error or "")
    assert len(meter.requests("POST", "receipt")) == 1 + 1 + 4  # E, B, then 1 + 3 retries


async def test_fix09_e_exhausted_but_meter_idle_returns_last_record(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    assert driver.transaction_active
    # The transaction ends behind our back (another client, a fault) before the next poll; E now fails.
    ended = meter._end("A")
    meter.override("POST", "receipt", status=500, body='{"error":"boom"}')
    response = await driver.stop_transaction("")
    assert response.status is OK, response
    assert response.signed_meter_value is not None and response.signed_meter_value.signed_meter_data == ended
    ends = meter.requests("POST", "receipt")[2:]
    assert len(ends) == 4  # 1 + 3 retries, then one metervalue poll, then GET transaction
    after = meter.seen[meter.seen.index(ends[-1]) + 1 :]
    assert [(s.method, s.node) for s in after[:2]] == [("GET", "metervalue"), ("GET", "transaction")]
    assert not driver.transaction_active


async def test_fix10_stop_before_init_answers_at_once(
    make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock
) -> None:
    drv = await make_driver(request_timeout_s=0.2)
    assert (await drv.stop_transaction("")).status is UNEXPECTED  # not even started
    meter.override("GET", "gw", hang=True)
    await drv.start()
    sent, sim_before = len(meter.seen), clock.now()
    response = await drv.stop_transaction("")
    assert response.status is UNEXPECTED and "Init of communication not finished yet" in (response.error or "")
    assert meter.seen[sent:] == [] and clock.now() == sim_before  # answered at once: nothing sent, no wait
    meter.clear_overrides()
    await drv.wait_for("initialised")
    assert (await drv.start_transaction(make_req())).status is OK


async def test_fix11_meter_power_cycle_noticed_from_polls(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.power_cycle()
    event = await driver.wait_for("reinitialising")
    assert "time status is U" in event.data
    await driver.wait_for("initialised")
    assert len([e for e in driver.events.history if e.name == "public_key_ocmf"]) == 2
    assert len(meter.requests("POST", "gw")) == 2 and meter.gw_written
    assert (await driver.start_transaction(make_req())).status is OK  # C++: gw_not_set forever


async def test_fix11_power_cycle_right_after_a_refused_gw(make_driver: MakeDriver, meter: FakeMeter) -> None:
    """After a driver restart POST gw is refused, so the driver never wrote the time: time status U on the
    first poll is then checked against GET gw, and an empty CT means the meter restarted meanwhile."""
    meter.ct, meter.ci, meter.gw_written = "EVSEID", "9999", True  # another CI: POST gw is refused
    drv = await make_driver()
    await drv.start()
    await drv.wait_for("initialised")
    meter.power_cycle()
    event = await drv.wait_for("reinitialising")
    assert "CT empty" in event.data
    await drv.wait_for("initialised")
    assert meter.gw_written and len(meter.requests("POST", "gw")) == 2  # refused once, then written


async def test_fix15_client_errors_fail_at_once_naming_the_field(driver: IemDcrDriver, meter: FakeMeter) -> None:
    body = '{"error":"bad_value","message":"ID must have 0 to 64 characters, has 70"}'
    meter.override("POST", "user", status=400, body=body)
    response = await driver.start_transaction(make_req(identification_data="x" * 70))
    assert response.status is UNEXPECTED
    assert len(meter.requests("POST", "user")) == 1  # C++ (and the port before fix 15): 1 + 3 retries
    error = response.error or ""
    assert "answered 400" in error and "bad_value" in error and "(field ID)" in error, error
    assert "not retried" in error
    assert not [s for s in meter.requests("POST", "receipt") if s.body == {"TX": "B"}]


async def test_fix15_only_changeable_states_are_retried(driver: IemDcrDriver, meter: FakeMeter) -> None:
    for status, tries in ((500, 4), (503, 4), (428, 4), (425, 4), (404, 1), (409, 1), (400, 1)):
        sent = len(meter.requests("POST", "user"))
        meter.override("POST", "user", status=status, body='{"error":"x","message":"IL refused"}')
        response = await driver.start_transaction(make_req())
        assert response.status is UNEXPECTED
        assert len(meter.requests("POST", "user")) - sent == tries, status
    meter.clear_overrides()
    meter.override("POST", "user", close=True, times=2)  # transport failures are retried
    assert (await driver.start_transaction(make_req())).status is OK


# ----- fix 13: a stop never gets another transaction's record --------------------------------------------------


async def test_fix13_stop_after_a_refused_start_gets_no_record(driver: IemDcrDriver, meter: FakeMeter) -> None:
    """The issue's story: the same customer ID twice (a repeat customer), the second start refused."""
    assert (
        await driver.start_transaction(make_req(transaction_id="tx-1", identification_data="AAAA1111"))
    ).status is OK
    first = await driver.stop_transaction("tx-1")
    assert first.status is OK and first.signed_meter_value is not None
    meter.current_a = 25.0  # above the activation threshold: B refused
    refused = await driver.start_transaction(make_req(transaction_id="tx-2", identification_data="AAAA1111"))
    assert refused.status is UNEXPECTED
    sent = len(meter.seen)
    for transaction_id in ("tx-2", ""):  # "" stands for the last start
        stopped = await driver.stop_transaction(transaction_id)
        # C++ (and the port before fix 13): OK with T1, the previous customer's record
        assert stopped.status is UNEXPECTED and stopped.signed_meter_value is None
        assert "'tx-2' never began on the meter" in stopped.error and "current_above_threshold" in stopped.error
    assert [s for s in meter.seen[sent:] if s.node != "metervalue"] == []  # the meter was not even asked
    again = await driver.stop_transaction("tx-1")  # the same transaction asking again (a lost response)
    assert again.status is OK and again.signed_meter_value == first.signed_meter_value


async def test_fix13_a_record_delivered_for_one_transaction_is_not_given_to_another(
    driver: IemDcrDriver, meter: FakeMeter
) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    assert (await driver.stop_transaction("tx-1")).status is OK
    other = await driver.stop_transaction("tx-7")  # a transaction this driver never saw
    assert other.status is UNEXPECTED and other.signed_meter_value is None
    assert "T1" in other.error and "already delivered for transaction 'tx-1'" in other.error


async def test_fix13_stop_naming_another_transaction_ends_nothing(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    response = await driver.stop_transaction("tx-2")
    assert response.status is UNEXPECTED and "'tx-1'" in response.error and "nothing was ended" in response.error
    assert meter.xt and meter.records == []
    assert (await driver.stop_transaction("tx-1")).status is OK


async def test_fix13_a_begin_without_answer_may_have_begun(driver: IemDcrDriver, meter: FakeMeter) -> None:
    """B that got no answer is not known to have failed: the stop then does what the meter says."""
    meter.override("POST", "receipt", close=True)  # the defensive E and every B: no answer
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is UNEXPECTED
    meter.clear_overrides()
    meter.user, meter.xt = {"ID": "x"}, True  # it had begun after all
    response = await driver.stop_transaction("tx-1")
    assert response.status is OK and response.signed_meter_value is not None


async def test_fix13_after_a_driver_restart_the_last_record_fallback_stays(
    make_driver: MakeDriver, meter: FakeMeter
) -> None:
    first = await make_driver()
    await first.start()
    await first.wait_for("initialised")
    assert (await first.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    assert (await first.stop_transaction("tx-1")).status is OK
    await first.stop()
    second = await make_driver()
    await second.start()
    await second.wait_for("initialised")
    response = await second.stop_transaction("tx-2")  # it knows nothing: the documented "last record"
    assert response.status is OK and response.signed_meter_value is not None
    assert response.signed_meter_value.signed_meter_data == meter.records[-1]


# ----- fix 14: a slow signature --------------------------------------------------------------------------------


async def test_fix14_425_is_asked_again_every_250_ms_until_the_signature_timeout(
    make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock
) -> None:
    drv = await make_driver(signature_timeout_ms=3000)
    await drv.start()
    await drv.wait_for("initialised")
    assert (await drv.start_transaction(make_req())).status is OK
    meter.override("GET", "receipt", status=425, body='{"error":"signature_pending","message":"signing"}', times=8)
    response = await drv.stop_transaction("")
    # C++ (and the port before fix 14): 1 + 3 tries, then the record is lost for this stop
    assert response.status is OK, response
    assert response.signed_meter_value is not None and response.signed_meter_value.signed_meter_data == meter.records[0]
    asked = [s.at for s in meter.requests("GET", "receipt")]
    assert len(asked) == 9 and [b - a for a, b in itertools.pairwise(asked)] == [0.25] * 8

    assert (await drv.start_transaction(make_req())).status is OK
    meter.override("GET", "receipt", status=425, body='{"error":"signature_pending","message":"signing"}')
    before = len(meter.requests("GET", "receipt"))
    response = await drv.stop_transaction("")
    assert response.status is UNEXPECTED and "still signing the record after 3000 ms" in response.error
    asked = [s.at for s in meter.requests("GET", "receipt")[before:]]
    end = next(s.at for s in reversed(meter.requests("POST", "receipt")) if s.body == {"TX": "E"})
    assert len(asked) == 12 and asked[-1] - end == 3.0  # 250 ms ... 3 s after the E, then it gives up
    meter.clear_overrides()
    later = await drv.stop_transaction("")  # the record stayed on the meter
    assert later.status is OK and later.signed_meter_value is not None
    assert later.signed_meter_value.signed_meter_data == meter.records[-1]


async def test_fix14_other_receipt_failures_keep_the_retry_budget(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    meter.override("GET", "receipt", status=503, body='{"error":"busy"}')
    response = await driver.stop_transaction("")
    assert response.status is UNEXPECTED and "503" in response.error
    assert len(meter.requests("GET", "receipt")) == 4  # 1 + 3 retries


# ----- fix 16: a start during a transaction publishes the ended record ------------------------------------------


async def test_fix16_start_during_a_transaction_publishes_its_record(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1", identification_data="AAAA"))).status is OK
    with driver.subscribe(["transaction_ended"]) as ended:
        response = await driver.start_transaction(make_req(transaction_id="tx-2", identification_data="BBBB"))
        event = ended.get_nowait()
    assert response.status is OK
    # C++ (and the port before fix 16): E, then POST user at once; the first record never left the meter
    assert event is not None and event.data.transaction_id == "tx-1"
    assert event.data.signed_meter_value.signed_meter_data == meter.records[0] and '"ID":"AAAA"' in meter.records[0]
    assert event.to_json()["data"]["signed_meter_value"]["public_key"] == driver.public_key_ocmf
    order = [(s.method, s.node) for s in meter.seen if s.node in ("receipt", "user")][-4:]
    assert order == [("POST", "receipt"), ("GET", "receipt"), ("POST", "user"), ("POST", "receipt")]


async def test_fix16_unreadable_record_keeps_the_new_transaction_from_beginning(
    driver: IemDcrDriver, meter: FakeMeter
) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    meter.override("GET", "receipt", status=500, body='{"error":"boom"}')
    response = await driver.start_transaction(make_req(transaction_id="tx-2"))
    assert response.status is UNEXPECTED and "No new transaction was begun" in response.error
    assert not meter.xt and len(meter.records) == 1  # tx-1 ended, tx-2 not begun: the last record is tx-1's
    meter.clear_overrides()
    stopped = await driver.stop_transaction("tx-1")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    assert stopped.signed_meter_value.signed_meter_data == meter.records[0]


# ----- fix 17: re-initialisation writes only the time --------------------------------------------------------


async def test_fix17_same_gw_writes_only_the_time_while_idle(make_driver: MakeDriver, meter: FakeMeter) -> None:
    meter.ct, meter.ci, meter.gw_written = "EVSEID", "1234", True  # kept from an earlier driver run
    drv = await make_driver()
    with drv.subscribe(["warning"]) as warnings:
        await drv.start()
        await drv.wait_for("initialised")
        assert warnings.get_nowait() is None
    nodes = [(s.method, s.node) for s in meter.seen]
    # C++: GET gw, POST gw (428), ... POST datetime
    assert nodes[:5] == [
        ("GET", "gw"),
        ("GET", "metervalue"),
        ("POST", "datetime"),
        ("GET", "publickey"),
        ("GET", "metervalue"),
    ]
    assert meter.requests("POST", "gw") == []


async def test_fix17_same_gw_during_a_transaction_writes_nothing(
    make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock
) -> None:
    meter.ct, meter.ci, meter.gw_written = "EVSEID", "1234", True
    meter.user, meter.xt = {"ID": "x"}, True
    drv = await make_driver()
    await drv.start()
    await drv.wait_for("initialised")
    await clock.sleep(5)
    assert meter.requests("POST", "gw") == [] and meter.requests("POST", "datetime") == []
    assert (await drv.stop_transaction("")).status is OK
    await clock.sleep(2)
    assert len(meter.requests("POST", "datetime")) == 1  # written on the first idle poll


async def test_fix17_changed_gw_is_posted_and_the_warning_names_both_values(
    make_driver: MakeDriver, meter: FakeMeter
) -> None:
    meter.ct, meter.ci, meter.gw_written = "EVSEID", "OLD-CI", True
    drv = await make_driver(CI="NEW-CI")
    with drv.subscribe(["warning"]) as warnings:
        await drv.start()
        await drv.wait_for("initialised")
        warning = warnings.get_nowait()
    assert len(meter.requests("POST", "gw")) == 1 and meter.ci == "OLD-CI"
    assert warning is not None and "428" in warning.data
    assert "CI='OLD-CI'" in warning.data and "CI='NEW-CI'" in warning.data
