"""The C++ defects of driver.md §3 (fixes 1-18): each test fails against the C++ module's behaviour.

They run against the twin: its faults, firmware switches and power give a meter in trouble, its network faults
(``tests.support.twin.network_faults``) a link in trouble, and its journal says what the driver sent. Fixes 2
and 3 need answers no meter gives and run on the fake meter (tests/support/fake_meter.py says why).
"""

from __future__ import annotations

import itertools

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.types import TransactionRequestStatus
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSlot, Twin
from iemdcr_twin.simulator.model.timefmt import format_tm
from tests.support.driver import CI, MakeDriver, make_req, started, wait
from tests.support.fake_meter import FakeMeter
from tests.support.meter import HEALTHY_XC, USER
from tests.support.twin import network_faults, requests_to, wire

OK = TransactionRequestStatus.OK
UNEXPECTED = TransactionRequestStatus.UNEXPECTED_ERROR
B = {"TX": "B"}


async def polls_during(slot: MeterSlot, clock: SimClock, seconds: float) -> int:
    before = len(requests_to(slot, "GET", "metervalue"))
    await clock.sleep(seconds)
    return len(requests_to(slot, "GET", "metervalue")) - before


def begins(slot: MeterSlot, since: int = 0) -> list[object]:
    """The POST receipt B the meter answered (any status) after journal seq ``since``."""
    return [e for e in requests_to(slot, "POST", "receipt", since) if e.body == B]


def gw_written_before(slot: MeterSlot, clock: SimClock, ci: str = CI) -> None:
    """gw as an earlier driver run left it: CT EVSEID, this CI, the time then (the meter keeps it until it restarts)."""
    slot.meter.post_gw({"CT": "EVSEID", "CI": ci, "TM": format_tm(clock.now(), 60)})


def begun_by_another_client(slot: MeterSlot, user_id: str = "x") -> None:
    """A transaction another client began on the meter, unknown to the driver."""
    slot.meter.post_user({**USER, "ID": user_id})
    slot.meter.post_receipt(B)


async def test_fix01_early_returns_do_not_stop_polling(driver: IemDcrDriver, slot: MeterSlot, clock: SimClock) -> None:
    assert (await driver.start_transaction(make_req(evse_id="nope"))).status is TransactionRequestStatus.NOT_SUPPORTED
    slot.meter.raise_fault("tamper_detected")  # XC 0x0004
    await wait(driver, "powermeter")
    assert (await driver.start_transaction(make_req())).status is UNEXPECTED
    slot.meter.clear_fault("tamper_detected")
    # C++: start_transaction_running stays true after these returns and the live loop never polls again
    assert await polls_during(slot, clock, 5) >= 4
    assert (await driver.start_transaction(make_req())).status is OK


async def test_fix02_empty_ct_string_means_gw_not_set(fake_driver: IemDcrDriver, fake_meter: FakeMeter) -> None:
    """GET gw says CT "" or null while the meter keeps its gw: answers no meter gives (the twin's honest CT "" after
    a power cycle: test_against_twin.py::test_start_right_after_a_power_cycle_sees_ct_empty_and_reinitialises)."""
    for empty in ('""', "null"):
        fake_meter.override("GET", "gw", body=f'{{"CT":{empty},"CI":"","TM":"{fake_meter.tm()}"}}', times=1)
        with fake_driver.subscribe(["reinitialising"]) as reinit:
            response = await fake_driver.start_transaction(make_req())
            event = reinit.get_nowait()
        assert response.status is UNEXPECTED and "Re-init triggered" in (response.error or "")
        assert event is not None and "CT empty" in event.data
        assert not [s for s in fake_meter.requests("POST", "receipt") if s.body == B]
        await wait(fake_driver, "initialised")


async def test_fix03_energy_parses_the_whole_wv_string(fake_driver: IemDcrDriver, fake_meter: FakeMeter) -> None:
    """WV without its zero padding: the twin, like the meter, always pads it to 8 integer digits."""
    fake_meter.pad_wv = False
    fake_meter.tx_import_wh, fake_meter.tx_export_wh = 1_040, 12_345  # "1.040" and "12.345"
    event = await wait(fake_driver, "powermeter", lambda e: e.data.energy_Wh_import.total != 0)
    # C++ drops the first character: ".040" -> 40 Wh and "2.345" -> 2345 Wh
    assert event.data.energy_Wh_import.total == 1040.0
    assert event.data.energy_Wh_export.total == 12345.0


async def test_fix04_callers_get_the_detailed_error(driver: IemDcrDriver, slot: MeterSlot) -> None:
    network_faults(slot, {"action": "status", "status": 400, "method": "POST", "path": "user"})
    response = await driver.start_transaction(make_req())
    assert response.status is UNEXPECTED
    error = response.error or ""
    assert "std::exception" not in error
    assert "POST /counter/v1/ocmf/user answered 400" in error and "injected network fault" in error


async def test_fix05_hanging_meter_times_out_and_recovers(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    drv = await started(make_driver(slot.url, request_timeout_s=0.05))
    hang_polls = {"action": "hang", "method": "GET", "path": "metervalue"}
    network_faults(slot, hang_polls)
    raised = await wait(drv, "communication_fault_raised")
    assert "timeout" in raised.data
    network_faults(slot, hang_polls, {"action": "hang", "method": "GET", "path": "gw"})
    sent, sim_before = slot.host.journal.last_seq, clock.now()
    response = await drv.start_transaction(make_req())
    assert response.status is UNEXPECTED  # not initialised: at once, without waiting on the hanging meter
    assert "Init of communication not finished yet" in (response.error or "")
    assert slot.host.journal.last_seq == sent and clock.now() == sim_before  # nothing sent, no wait
    network_faults(slot)
    await wait(drv, "communication_fault_cleared")
    await wait(drv, "initialised", include_past=True)
    assert drv.initialised
    since = slot.host.journal.last_seq
    faults = network_faults(slot, {"action": "hang", "method": "POST", "path": "user"})
    hung = faults.fired["hang"]
    response = await drv.start_transaction(make_req())
    assert response.status is UNEXPECTED and "timeout" in (response.error or "")
    assert faults.fired["hang"] - hung == 4  # 1 + 3 retries, each ended by the timeout, then it gives up
    assert begins(slot, since) == []


async def test_fix06_meter_error_state_is_unexpected_error_not_not_supported(
    driver: IemDcrDriver, slot: MeterSlot
) -> None:
    slot.meter.raise_fault("signature_unit_fault")  # XC 0x0010
    await wait(driver, "powermeter", lambda e: driver.status_code != HEALTHY_XC)
    response = await driver.start_transaction(make_req())
    assert response.status is UNEXPECTED  # the C++ docs promise NOT_SUPPORTED
    assert "0x0010" in (response.error or "")


async def test_fix07_failing_datetime_backs_off(slot: MeterSlot, make_driver: MakeDriver, clock: SimClock) -> None:
    # gw was written by an earlier driver run with the same CT and CI: init writes only the time (fix 17), and
    # that write fails
    gw_written_before(slot, clock)
    network_faults(slot, {"action": "status", "status": 500, "method": "POST", "path": "datetime"})
    await started(make_driver(slot.url, datetime_resync_interval=1))
    await clock.sleep(120)
    tries = [e.sim_time for e in requests_to(slot, "POST", "datetime")]
    # C++ tries every second (~120 times); with backoff: gaps 1, 2, 4, 8, 16, 32, 64
    assert 6 <= len(tries) <= 8, tries
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert all(later >= 1.5 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
    network_faults(slot)
    await clock.sleep(140)
    assert requests_to(slot, "POST", "datetime")[-1].sim_time > tries[-1]
    ok_at = requests_to(slot, "POST", "datetime")[-1].sim_time
    await clock.sleep(600)
    assert requests_to(slot, "POST", "datetime")[-1].sim_time == ok_at  # success: next one in an hour


async def test_fix08_start_right_after_init_succeeds(slot: MeterSlot, make_driver: MakeDriver) -> None:
    drv = await started(make_driver(slot.url))
    assert drv.status_code == HEALTHY_XC  # XC known without waiting for the first loop poll
    assert (await drv.start_transaction(make_req())).status is OK


async def test_fix09_stop_is_robust_to_a_stale_poll(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    first = await driver.stop_transaction("")
    await wait(driver, "powermeter")
    # Another client begins a transaction right after our poll: our last poll still says idle.
    begun_by_another_client(slot, "second")
    assert not driver.transaction_active
    response = await driver.stop_transaction("")
    # C++ trusts the stale flag, skips E and returns the previous record, leaving the transaction open.
    assert response.status is OK
    assert response.signed_meter_value != first.signed_meter_value
    assert response.signed_meter_value is not None and '"ID":"second"' in response.signed_meter_value.signed_meter_data
    assert slot.meter.transaction is None and len(slot.meter.records) == 2


async def test_fix09_e_failing_while_running_is_an_error(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    network_faults(slot, {"action": "status", "status": 503, "method": "POST", "path": "receipt"})
    response = await driver.stop_transaction("")
    assert response.status is UNEXPECTED and "503" in (response.error or "")
    assert len(requests_to(slot, "POST", "receipt")) == 1 + 1 + 4  # E, B, then 1 + 3 retries


async def test_fix09_e_exhausted_but_meter_idle_returns_last_record(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    assert driver.transaction_active
    # The transaction ends behind our back (another client, a fault) before the next poll; E now fails.
    slot.meter.post_receipt({"TX": "E"})
    ended = slot.meter.records[-1].ocmf
    network_faults(slot, {"action": "status", "status": 500, "method": "POST", "path": "receipt"})
    response = await driver.stop_transaction("")
    assert response.status is OK, response
    assert response.signed_meter_value is not None and response.signed_meter_value.signed_meter_data == ended
    ends = requests_to(slot, "POST", "receipt")[2:]
    assert len(ends) == 4  # 1 + 3 retries, then one metervalue poll, then GET transaction
    after = wire(slot, ends[-1].seq, polls=True)
    assert [(e.method, e.node) for e in after[:2]] == [("GET", "metervalue"), ("GET", "transaction")]
    assert not driver.transaction_active


async def test_fix10_stop_before_init_answers_at_once(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    drv = make_driver(slot.url, request_timeout_s=0.2)
    assert (await drv.stop_transaction("")).status is UNEXPECTED  # not even started
    network_faults(slot, {"action": "hang", "method": "GET", "path": "gw"})
    await drv.start()
    sent, sim_before = slot.host.journal.last_seq, clock.now()
    response = await drv.stop_transaction("")
    assert response.status is UNEXPECTED and "Init of communication not finished yet" in (response.error or "")
    assert slot.host.journal.last_seq == sent and clock.now() == sim_before  # answered at once: nothing sent, no wait
    network_faults(slot)
    await wait(drv, "initialised")
    assert (await drv.start_transaction(make_req())).status is OK


async def test_fix11_meter_power_cycle_noticed_from_polls(
    twin: Twin, driver: IemDcrDriver, slot: MeterSlot, clock: SimClock
) -> None:
    with clock.busy():  # no time passes while the listener closes and opens again
        await twin.power_cycle(slot.meter.serial)
    event = await wait(driver, "reinitialising")
    assert "time status is U" in event.data
    await wait(driver, "initialised")
    assert len([e for e in driver.events.history if e.name == "public_key_ocmf"]) == 2
    assert len(requests_to(slot, "POST", "gw")) == 2 and slot.meter.gw_written
    assert (await driver.start_transaction(make_req())).status is OK  # C++: gw_not_set forever


async def test_fix11_power_cycle_right_after_a_refused_gw(
    twin: Twin, slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    """After a driver restart POST gw is refused, so the driver never wrote the time: time status U on the
    first poll is then checked against GET gw, and an empty CT means the meter restarted meanwhile."""
    gw_written_before(slot, clock, "9999")  # another CI: POST gw is refused
    drv = await started(make_driver(slot.url))
    with clock.busy():
        await twin.power_cycle(slot.meter.serial)
    event = await wait(drv, "reinitialising")
    assert "CT empty" in event.data
    await wait(drv, "initialised")
    assert slot.meter.gw_written and len(requests_to(slot, "POST", "gw")) == 2  # refused once, then written


async def test_fix15_client_errors_fail_at_once_naming_the_field(driver: IemDcrDriver, slot: MeterSlot) -> None:
    response = await driver.start_transaction(make_req(identification_data="x" * 70))  # the meter refuses: 400
    assert response.status is UNEXPECTED
    assert len(requests_to(slot, "POST", "user")) == 1  # C++ (and the port before fix 15): 1 + 3 retries
    error = response.error or ""
    assert "answered 400" in error and "bad_value" in error and "(field ID)" in error, error
    assert "not retried" in error
    assert begins(slot) == []


async def test_fix15_only_changeable_states_are_retried(driver: IemDcrDriver, slot: MeterSlot) -> None:
    for status, tries in ((500, 4), (503, 4), (428, 4), (425, 4), (404, 1), (409, 1), (400, 1)):
        sent = len(requests_to(slot, "POST", "user"))
        network_faults(slot, {"action": "status", "status": status, "method": "POST", "path": "user"})
        response = await driver.start_transaction(make_req())
        assert response.status is UNEXPECTED
        assert len(requests_to(slot, "POST", "user")) - sent == tries, status
    network_faults(slot, {"action": "reset", "method": "POST", "path": "user", "count": 2})  # transport failures
    assert (await driver.start_transaction(make_req())).status is OK  # are retried


# ----- fix 13: a stop never gets another transaction's record --------------------------------------------------


async def test_fix13_stop_after_a_refused_start_gets_no_record(driver: IemDcrDriver, slot: MeterSlot) -> None:
    """The issue's story: the same customer ID twice (a repeat customer), the second start refused."""
    assert (
        await driver.start_transaction(make_req(transaction_id="tx-1", identification_data="AAAA1111"))
    ).status is OK
    first = await driver.stop_transaction("tx-1")
    assert first.status is OK and first.signed_meter_value is not None
    slot.meter.set_load(25.0, 400.0)  # above the activation threshold: B refused
    refused = await driver.start_transaction(make_req(transaction_id="tx-2", identification_data="AAAA1111"))
    assert refused.status is UNEXPECTED
    sent = slot.host.journal.last_seq
    for transaction_id in ("tx-2", ""):  # "" stands for the last start
        stopped = await driver.stop_transaction(transaction_id)
        # C++ (and the port before fix 13): OK with T1, the previous customer's record
        assert stopped.status is UNEXPECTED and stopped.signed_meter_value is None
        assert "'tx-2' never began on the meter" in stopped.error and "current_above_threshold" in stopped.error
    assert wire(slot, sent) == []  # the meter was not even asked
    again = await driver.stop_transaction("tx-1")  # the same transaction asking again (a lost response)
    assert again.status is OK and again.signed_meter_value == first.signed_meter_value


async def test_fix13_a_record_delivered_for_one_transaction_is_not_given_to_another(driver: IemDcrDriver) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    assert (await driver.stop_transaction("tx-1")).status is OK
    other = await driver.stop_transaction("tx-7")  # a transaction this driver never saw
    assert other.status is UNEXPECTED and other.signed_meter_value is None
    assert "T1" in other.error and "already delivered for transaction 'tx-1'" in other.error


async def test_fix13_stop_naming_another_transaction_ends_nothing(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    response = await driver.stop_transaction("tx-2")
    assert response.status is UNEXPECTED and "'tx-1'" in response.error and "nothing was ended" in response.error
    assert slot.meter.transaction is not None and slot.meter.records == []
    assert (await driver.stop_transaction("tx-1")).status is OK


async def test_fix13_a_begin_without_answer_may_have_begun(driver: IemDcrDriver, slot: MeterSlot) -> None:
    """B that got no answer is not known to have failed: the stop then does what the meter says."""
    network_faults(
        slot, {"action": "reset", "method": "POST", "path": "receipt"}
    )  # the defensive E, every B: no answer
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is UNEXPECTED
    network_faults(slot)
    begun_by_another_client(slot)  # it had begun after all
    response = await driver.stop_transaction("tx-1")
    assert response.status is OK and response.signed_meter_value is not None


async def test_fix13_after_a_driver_restart_the_last_record_fallback_stays(
    slot: MeterSlot, make_driver: MakeDriver
) -> None:
    first = await started(make_driver(slot.url))
    assert (await first.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    assert (await first.stop_transaction("tx-1")).status is OK
    await first.stop()
    second = await started(make_driver(slot.url))
    response = await second.stop_transaction("tx-2")  # it knows nothing: the documented "last record"
    assert response.status is OK and response.signed_meter_value is not None
    assert response.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf


# ----- fix 14: a slow signature --------------------------------------------------------------------------------


async def test_fix14_425_is_asked_again_every_250_ms_until_the_signature_timeout(
    slot: MeterSlot, make_driver: MakeDriver
) -> None:
    drv = await started(make_driver(slot.url, signature_timeout_ms=3000))
    assert (await drv.start_transaction(make_req())).status is OK
    pending = {"action": "status", "status": 425, "method": "GET", "path": "receipt"}
    network_faults(slot, {**pending, "count": 8})
    response = await drv.stop_transaction("")
    # C++ (and the port before fix 14): 1 + 3 tries, then the record is lost for this stop
    assert response.status is OK, response
    assert response.signed_meter_value is not None
    assert response.signed_meter_value.signed_meter_data == slot.meter.records[0].ocmf
    asked = [e.sim_time for e in requests_to(slot, "GET", "receipt")]
    assert len(asked) == 9 and [b - a for a, b in itertools.pairwise(asked)] == [0.25] * 8

    assert (await drv.start_transaction(make_req())).status is OK
    network_faults(slot, pending)
    before = len(requests_to(slot, "GET", "receipt"))
    response = await drv.stop_transaction("")
    assert response.status is UNEXPECTED and "still signing the record after 3000 ms" in response.error
    asked = [e.sim_time for e in requests_to(slot, "GET", "receipt")[before:]]
    end = next(e.sim_time for e in reversed(requests_to(slot, "POST", "receipt")) if e.body == {"TX": "E"})
    assert len(asked) == 12 and asked[-1] - end == 3.0  # 250 ms ... 3 s after the E, then it gives up
    network_faults(slot)
    later = await drv.stop_transaction("")  # the record stayed on the meter
    assert later.status is OK and later.signed_meter_value is not None
    assert later.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf


async def test_fix14_other_receipt_failures_keep_the_retry_budget(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    network_faults(slot, {"action": "status", "status": 503, "method": "GET", "path": "receipt"})
    response = await driver.stop_transaction("")
    assert response.status is UNEXPECTED and "503" in response.error
    assert len(requests_to(slot, "GET", "receipt")) == 4  # 1 + 3 retries


# ----- fix 16: a start during a transaction publishes the ended record ------------------------------------------


async def test_fix16_start_during_a_transaction_publishes_its_record(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1", identification_data="AAAA"))).status is OK
    with driver.subscribe(["transaction_ended"]) as ended:
        response = await driver.start_transaction(make_req(transaction_id="tx-2", identification_data="BBBB"))
        event = ended.get_nowait()
    assert response.status is OK
    # C++ (and the port before fix 16): E, then POST user at once; the first record never left the meter
    first = slot.meter.records[0].ocmf
    assert event is not None and event.data.transaction_id == "tx-1"
    assert event.data.signed_meter_value.signed_meter_data == first and '"ID":"AAAA"' in first
    assert event.to_json()["data"]["signed_meter_value"]["public_key"] == driver.public_key_ocmf
    order = [(e.method, e.node) for e in wire(slot) if e.node in ("receipt", "user")][-4:]
    assert order == [("POST", "receipt"), ("GET", "receipt"), ("POST", "user"), ("POST", "receipt")]


async def test_fix16_unreadable_record_keeps_the_new_transaction_from_beginning(
    driver: IemDcrDriver, slot: MeterSlot
) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-1"))).status is OK
    network_faults(slot, {"action": "status", "status": 500, "method": "GET", "path": "receipt"})
    response = await driver.start_transaction(make_req(transaction_id="tx-2"))
    assert response.status is UNEXPECTED and "No new transaction was begun" in response.error
    # tx-1 ended, tx-2 not begun: the last record is tx-1's
    assert slot.meter.transaction is None and len(slot.meter.records) == 1
    network_faults(slot)
    stopped = await driver.stop_transaction("tx-1")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    assert stopped.signed_meter_value.signed_meter_data == slot.meter.records[0].ocmf


# ----- fix 17: re-initialisation writes only the time --------------------------------------------------------


async def test_fix17_same_gw_writes_only_the_time_while_idle(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    gw_written_before(slot, clock)  # kept from an earlier driver run
    drv = make_driver(slot.url)
    with drv.subscribe(["warning"]) as warnings:
        await drv.start()
        await wait(drv, "initialised")
        assert warnings.get_nowait() is None
    nodes = [(e.method, e.node) for e in wire(slot, polls=True)]
    # C++: GET gw, POST gw (428), ... POST datetime
    assert nodes[:5] == [
        ("GET", "gw"),
        ("GET", "metervalue"),
        ("POST", "datetime"),
        ("GET", "publickey"),
        ("GET", "metervalue"),
    ]
    assert requests_to(slot, "POST", "gw") == []


async def test_fix17_same_gw_during_a_transaction_writes_nothing(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    gw_written_before(slot, clock)
    begun_by_another_client(slot)
    drv = await started(make_driver(slot.url))
    await clock.sleep(5)
    assert requests_to(slot, "POST", "gw") == [] and requests_to(slot, "POST", "datetime") == []
    assert (await drv.stop_transaction("")).status is OK
    await clock.sleep(2)
    assert len(requests_to(slot, "POST", "datetime")) == 1  # written on the first idle poll


async def test_fix17_changed_gw_is_posted_and_the_warning_names_both_values(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    gw_written_before(slot, clock, "OLD-CI")
    drv = make_driver(slot.url, CI="NEW-CI")
    with drv.subscribe(["warning"]) as warnings:
        await drv.start()
        await wait(drv, "initialised")
        warning = warnings.get_nowait()
    assert len(requests_to(slot, "POST", "gw")) == 1 and slot.meter.CI == "OLD-CI"
    assert warning is not None and "428" in warning.data
    assert "CI='OLD-CI'" in warning.data and "CI='NEW-CI'" in warning.data
