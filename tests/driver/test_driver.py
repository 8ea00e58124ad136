"""The driver's behaviour kept from EVerest (driver.md §2), against the twin in virtual time.

What the meter saw is read from its journal (``tests.support.twin``); misbehaviour comes from the twin's faults
and network faults. One test needs bodies no meter sends and runs on the fake meter (tests/support/fake_meter.py).
"""

from __future__ import annotations

import itertools

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import DriverEvent
from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFUserIdentificationStatus,
    TransactionRequestStatus,
)
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSlot
from tests.support.clock import record_sleeps
from tests.support.driver import CI, MakeDriver, make_req, started, wait
from tests.support.fake_meter import FakeMeter
from tests.support.meter import USER
from tests.support.twin import MakeMeter, network_faults, requests_to, wire

OK = TransactionRequestStatus.OK
UNEXPECTED = TransactionRequestStatus.UNEXPECTED_ERROR
# EVerest's own request: no identification data (the transaction id becomes ID), RFID and OCPP flags
EVEREST_FLAGS = [OCMFIdentificationFlags.RFID_PLAIN, OCMFIdentificationFlags.OCPP_AUTH]


async def test_init_sequence_and_public_key(slot: MeterSlot, make_driver: MakeDriver) -> None:
    drv = make_driver(slot.url, TT_initial="0.40 EUR/kWh")
    with drv.subscribe() as events:
        await drv.start()
        await wait(drv, "initialised")
        names = []
        while (event := events.get_nowait()) is not None:
            names.append(event.name)
    seen = wire(slot, polls=True)
    assert [(e.method, e.node) for e in seen[:5]] == [
        ("GET", "gw"),
        ("POST", "gw"),
        ("POST", "tariff"),
        ("GET", "publickey"),
        ("GET", "metervalue"),
    ]
    assert seen[1].body["CT"] == "EVSEID" and seen[1].body["CI"] == CI
    assert seen[2].body == {"TT": "0.40 EUR/kWh"}
    assert names == ["public_key_ocmf", "powermeter", "initialised"]
    public_key = slot.meter.get_publickey().PK
    assert drv.public_key_ocmf == public_key
    assert drv.events.history[0].data == public_key


async def test_tm_sent_is_local_time_at_offset(slot: MeterSlot, make_driver: MakeDriver) -> None:
    await started(make_driver(slot.url, timezone="-0230"))
    tm = requests_to(slot, "POST", "gw")[0].body["TM"]
    assert tm.endswith(",000-0230") and len(tm) == 28
    # 1_750_000_000 is 2025-06-15T15:06:40Z; at -02:30 that is 12:36:40
    assert tm.startswith("2025-06-15T12:36:40")


async def test_live_values(driver: IemDcrDriver, slot: MeterSlot, clock: SimClock) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    slot.meter.set_load(52.0, 500.0)
    await clock.sleep(144)  # 26 kW for 144 s: 1040 Wh imported, "00000001.040"
    slot.meter.set_load(-40.0)
    await clock.sleep(36)  # 20 kW back for 36 s: 200 Wh exported
    slot.meter.set_load(0.5, 812.5)  # below the activation threshold; the import grows by 0.1 Wh a second
    event = await wait(driver, "powermeter", lambda e: e.data.current_A.DC == 0.5)
    pm = event.data
    assert pm.voltage_V.DC == 812.5
    assert pm.power_W.total == 406.25
    assert pm.energy_Wh_import.total == 1_040.0
    assert pm.energy_Wh_export.total == 200.0
    assert pm.meter_id == "1ISA0200000001"
    assert len(pm.timestamp) == 28 and pm.timestamp.endswith("+0100")
    assert pm.to_json()["current_A"] == {"DC": 0.5}


async def test_polls_about_once_a_second(driver: IemDcrDriver) -> None:
    times = []
    for _ in range(4):
        times.append((await wait(driver, "powermeter")).time)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.9 <= gap <= 1.6 for gap in gaps), gaps


async def test_powered_off_meter_then_power_on(slot: MeterSlot, make_driver: MakeDriver, clock: SimClock) -> None:
    network_faults(slot, {"action": "reset"})  # every connection closed unanswered, like a meter without power
    drv = make_driver(slot.url)
    await drv.start()
    raised = await wait(drv, "communication_fault_raised")
    assert "initialisation failed" in raised.data
    assert not drv.initialised
    started = clock.now()
    # init retries every resilience_initial_connection_retry_delay (10 s) forever
    await clock.sleep(35)
    attempts = sorted({e.sim_time for e in requests_to(slot, "GET", "gw")})  # aiohttp may resend on a disconnect
    assert len(attempts) in (4, 5)
    assert all(9.9 <= b - a <= 10.5 for a, b in itertools.pairwise(attempts)), attempts
    network_faults(slot)  # power is back
    await wait(drv, "communication_fault_cleared")
    await wait(drv, "initialised", include_past=True)
    assert drv.initialised and not drv.communication_fault_active
    assert clock.now() - started >= 30


async def test_driver_restart_without_meter_power_cycle(slot: MeterSlot, make_driver: MakeDriver) -> None:
    first = await started(make_driver(slot.url))
    await first.stop()
    second = make_driver(slot.url, CI="5678")  # another CI: POST gw again, refused (the same CI: fix 17)
    with second.subscribe(["warning"]) as warnings:
        await second.start()
        await wait(second, "initialised")
        warning = warnings.get_nowait()
    assert warning is not None and "gw already set" in warning.data and "428" in warning.data
    assert f"CI='{CI}'" in warning.data and "CI='5678'" in warning.data  # both values named (fix 17)
    assert len(requests_to(slot, "POST", "gw")) == 2
    # its own time was not written: it resyncs the clock on the first idle poll
    await wait(second, "powermeter")
    await wait(second, "powermeter")
    assert len(requests_to(slot, "POST", "datetime")) == 1


async def test_datetime_resync_every_interval_while_idle(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    drv = await started(make_driver(slot.url, datetime_resync_interval=1))
    slot.meter.post_user(dict(USER))  # another client's transaction runs: no resync
    slot.meter.post_receipt({"TX": "B"})
    await clock.sleep(3700)
    assert requests_to(slot, "POST", "datetime") == []
    slot.meter.post_receipt({"TX": "E"})
    await wait(drv, "powermeter", lambda e: True)
    await wait(drv, "powermeter")
    assert len(requests_to(slot, "POST", "datetime")) == 1
    await clock.sleep(1800)
    assert len(requests_to(slot, "POST", "datetime")) == 1


async def test_start_stop_happy_path(driver: IemDcrDriver, slot: MeterSlot) -> None:
    since = slot.host.journal.last_seq
    req = make_req(tariff_text="0.40 EUR/kWh", identification_data=None, identification_flags=EVEREST_FLAGS)
    started = await driver.start_transaction(req)
    assert started.status is TransactionRequestStatus.OK, started
    assert [(e.method, e.node) for e in wire(slot, since)] == [
        ("GET", "gw"),
        ("POST", "receipt"),
        ("POST", "user"),
        ("POST", "receipt"),
    ]
    user = requests_to(slot, "POST", "user")[0].body
    assert user == {
        "IS": True,
        "IL": "VERIFIED",
        "IF": ["RFID_PLAIN", "OCPP_AUTH"],
        "IT": "ISO14443",
        "ID": "tx-1",
        "US": False,
        "TT": "0.40 EUR/kWh",
    }
    assert [e.body for e in requests_to(slot, "POST", "receipt")] == [{"TX": "E"}, {"TX": "B"}]
    assert slot.meter.transaction is not None
    stopped = await driver.stop_transaction("tx-1")
    assert stopped.status is TransactionRequestStatus.OK, stopped
    smv = stopped.signed_meter_value
    assert smv is not None
    assert smv.signed_meter_data == slot.meter.records[-1].ocmf  # byte for byte
    assert (smv.signing_method, smv.encoding_method, smv.public_key) == ("", "OCMF", slot.meter.get_publickey().PK)
    assert stopped.to_json()["signed_meter_value"]["encoding_method"] == "OCMF"


async def test_user_block_defaults(driver: IemDcrDriver, slot: MeterSlot) -> None:
    req = make_req(
        identification_level=None,
        identification_flags=[],
        identification_status=OCMFUserIdentificationStatus.NOT_ASSIGNED,
        identification_data="",
    )
    assert (await driver.start_transaction(req)).status is TransactionRequestStatus.OK
    user = requests_to(slot, "POST", "user")[0].body
    assert user["IL"] == "UNKNOWN" and user["IF"] == [] and user["IS"] is False
    assert user["ID"] == "tx-1" and "TT" not in user


async def test_identification_data_is_the_id(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req(identification_data="04A1B2C3"))).status.value == "OK"
    assert requests_to(slot, "POST", "user")[0].body["ID"] == "04A1B2C3"
    assert "04A1B2C3" in (await driver.stop_transaction("")).signed_meter_value.signed_meter_data  # type: ignore[union-attr]


async def test_start_while_transaction_running_closes_it(driver: IemDcrDriver, slot: MeterSlot) -> None:
    assert (await driver.start_transaction(make_req())).status.value == "OK"
    assert (await driver.start_transaction(make_req(transaction_id="tx-2"))).status.value == "OK"
    assert len(slot.meter.records) == 1 and slot.meter.transaction is not None
    assert (await driver.stop_transaction("tx-2")).status.value == "OK"
    assert len(slot.meter.records) == 2


async def test_evse_id_not_ci_is_not_supported_and_sends_nothing(driver: IemDcrDriver, slot: MeterSlot) -> None:
    before = len(wire(slot))
    response = await driver.start_transaction(make_req(evse_id="other"))
    assert response.status is TransactionRequestStatus.NOT_SUPPORTED
    assert "CI does not match evse_id" in (response.error or "")
    assert len(wire(slot)) == before
    assert (await driver.start_transaction(make_req(evse_id=""))).status.value == "OK"


async def test_threshold_refusal_then_success(driver: IemDcrDriver, slot: MeterSlot) -> None:
    slot.meter.set_load(20.0, 400.0)
    await wait(driver, "powermeter", lambda e: e.data.current_A.DC == 20.0)
    refused = await driver.start_transaction(make_req())
    assert refused.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert "current_above_threshold" in (refused.error or "")
    assert len([e for e in requests_to(slot, "POST", "receipt") if e.body == {"TX": "B"}]) == 4  # 1 + 3 retries
    slot.meter.set_load(0.0)
    assert (await driver.start_transaction(make_req())).status.value == "OK"
    slot.meter.set_load(20.0)
    refused_stop = await driver.stop_transaction("")
    assert refused_stop.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert "current_above_threshold" in (refused_stop.error or "")
    slot.meter.set_load(0.0)
    assert (await driver.stop_transaction("")).status.value == "OK"


async def test_stop_without_transaction_returns_last_record(driver: IemDcrDriver, slot: MeterSlot) -> None:
    await driver.start_transaction(make_req())
    first = await driver.stop_transaction("")
    again = await driver.stop_transaction("")
    assert again.status is TransactionRequestStatus.OK
    assert again.signed_meter_value == first.signed_meter_value
    assert requests_to(slot, "GET", "transaction") and not requests_to(slot, "GET", "v2/transaction")


async def test_stop_while_idle_tries_e_once(driver: IemDcrDriver, slot: MeterSlot, clock: SimClock) -> None:
    sleeps = record_sleeps(clock)
    await driver.start_transaction(make_req())
    await driver.stop_transaction("")
    ends_before = len([e for e in requests_to(slot, "POST", "receipt") if e.body == {"TX": "E"}])
    sleeps_before = len(sleeps)
    assert not driver.transaction_active
    again = await driver.stop_transaction("")
    assert again.status is TransactionRequestStatus.OK
    ends = [e for e in requests_to(slot, "POST", "receipt") if e.body == {"TX": "E"}]
    assert len(ends) == ends_before + 1  # one ignored try, not 1 + retries
    assert 0.25 not in sleeps[sleeps_before:]  # no retry delay, no idle wait


async def test_stop_falls_back_to_v2(make_meter: MakeMeter, make_driver: MakeDriver) -> None:
    slot = await make_meter(v1_transaction=False)
    drv = await started(make_driver(slot.url))
    await drv.start_transaction(make_req())
    await drv.stop_transaction("")
    again = await drv.stop_transaction("")
    assert again.status is TransactionRequestStatus.OK
    assert again.signed_meter_value is not None
    assert again.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf
    assert requests_to(slot, "GET", "v2/transaction")


async def test_stop_when_there_never_was_a_transaction(driver: IemDcrDriver) -> None:
    response = await driver.stop_transaction("")
    assert response.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert (response.error or "").endswith("the meter refuses the request itself. Maybe no transaction to return?")
    assert "v2/ocmf/transaction answered 404" in (response.error or "")


async def test_meter_fault_gives_unexpected_error_naming_xc(driver: IemDcrDriver, slot: MeterSlot) -> None:
    slot.meter.raise_fault("sensor_unit_fault")  # XC 0x0001
    await wait(driver, "powermeter")
    await wait(driver, "powermeter")
    response = await driver.start_transaction(make_req())
    assert response.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert response.error == "IEM-DCR is in error state. XC: 0x0001, 0x00000000, 0x00, 0x00"
    assert requests_to(slot, "POST", "user") == []


async def test_poll_failure_reinitialises(driver: IemDcrDriver, slot: MeterSlot) -> None:
    network_faults(slot, {"action": "status", "status": 500, "method": "GET", "path": "metervalue", "count": 1})
    event: DriverEvent = await wait(driver, "reinitialising")
    assert "500" in event.data
    assert not driver.communication_fault_active  # a 500 is an answer, not a transport failure
    await wait(driver, "initialised")
    assert driver.initialised


async def test_bad_answers_never_crash_the_loop(fake_driver: IemDcrDriver, fake_meter: FakeMeter) -> None:
    """Bodies no meter sends (the twin's own ``malformed`` network fault is only a cut-off JSON): fake meter."""
    bad = [
        "<html>oops</html>",
        "[1, 2]",
        '{"MS": "x"}',
        '{"MS":"x","TM":"t","XT":false,"XC":"c","I":1,"U2":1,"P":1,"RD":[{},{}]}',
        '{"MS":"x","TM":"t","XT":"no","XC":"c","I":1,"U2":1,"P":1,"RD":[]}',
    ]
    for body in bad:
        fake_meter.override("GET", "metervalue", body=body, times=1)
        reason = (await wait(fake_driver, "reinitialising")).data
        assert "unexpected response body" in reason
        await wait(fake_driver, "initialised")
    assert fake_driver.running and fake_driver.initialised
