"""The driver against a real twin (meter API over TCP on 127.0.0.1), both on one auto-jumping virtual clock.

Nothing here waits on wall-clock seconds: the twin's SimClock is virtual at rate 0 and jumps to the next
pending wake-up whenever nothing happened for a real millisecond (``tests.support.clock``). The driver gets
the same clock, and its HTTP requests hold auto-jump while in flight, so time never jumps in the middle of an
exchange. The driver never imports the simulator; only the tests do. Fixtures: tests/driver/conftest.py.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from pyocmf import OCMF

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.types import TransactionRequestStatus
from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.fleet import MeterSlot, Twin
from tests.support.driver import CI, RFID, MakeDriver, make_req, payload, started, wait
from tests.support.meter import HEALTHY_XC, metervalue
from tests.support.twin import MakeMeter, calls, load_for, wire

OK = TransactionRequestStatus.OK
UNEXPECTED = TransactionRequestStatus.UNEXPECTED_ERROR
NOT_SUPPORTED = TransactionRequestStatus.NOT_SUPPORTED
TM_WITHOUT_LETTER = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{3}[+-]\d{4}$")


# ----- init, restarts, power cycles -----------------------------------------------------------------------


async def test_init_against_powered_off_meter_then_power_on(
    twin: Twin, slot: MeterSlot, make_driver: MakeDriver
) -> None:
    serial = slot.meter.serial
    await twin.set_power(serial, False)
    drv = make_driver(slot.url)
    with drv.subscribe() as events:
        await drv.start()
        raised = await wait(drv, "communication_fault_raised")
        assert "initialisation failed" in raised.data and not drv.initialised
        assert drv.communication_fault_active
        await twin.set_power(serial, True)
        initialised = await wait(drv, "initialised")
        names = []
        while (event := events.get_nowait()) is not None:
            names.append(event.name)
    assert names.index("communication_fault_raised") < names.index("communication_fault_cleared")
    assert names.index("communication_fault_cleared") < names.index("initialised")
    assert names.count("initialised") == 1 and "public_key_ocmf" in names
    assert not drv.communication_fault_active
    # the retry waited resilience_initial_connection_retry_delay (10 s) of virtual time
    assert initialised.time - raised.time >= 10.0
    gw_posts = [e for e in wire(slot) if (e.method, e.node) == ("POST", "gw")]
    assert [e.status for e in gw_posts] == [200]
    assert slot.meter.gw_written and slot.meter.CI == CI


async def test_driver_restart_without_meter_power_cycle(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock
) -> None:
    first = await started(make_driver(slot.url, CI=CI))
    await first.stop()
    since = slot.host.journal.last_seq
    second = make_driver(slot.url, CI="DE*ISA*E0002")
    with second.subscribe(["warning", "initialised"]) as events:
        await second.start()
        warning = await events.get()
        assert warning.name == "warning" and "already set" in warning.data
        assert (await events.get()).name == "initialised"  # init went on
    init = calls(wire(slot, since))
    assert init[:2] == [("GET", "v1/ocmf/gw", 200), ("POST", "v1/ocmf/gw", 428)]
    assert ("GET", "v1/ocmf/publickey", 200) in init
    assert slot.meter.CI == CI  # frozen until the meter restarts
    # our time was not written: the first idle poll resynchronises it
    await clock.sleep(1.5)
    assert ("POST", "v1/ocmf/datetime", 200) in calls(wire(slot, since))
    # the next record still carries the CI written by the first driver
    assert (await second.start_transaction(make_req(evse_id=""))).status is OK
    stopped = await second.stop_transaction("")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    assert payload(stopped.signed_meter_value.signed_meter_data)["CI"] == CI


async def test_meter_power_cycle_noticed_from_polls_reinitialises(
    twin: Twin, slot: MeterSlot, driver: IemDcrDriver, clock: SimClock
) -> None:
    """Fix 11: off and on between two polls; every poll succeeds, only the time status U shows it."""
    since = slot.host.journal.last_seq
    with driver.subscribe() as events:
        with clock.busy():  # no time passes while the listener closes and opens again
            await twin.power_cycle(slot.meter.serial)
        reinit = await wait(driver, "reinitialising")
        assert "time status is U" in reinit.data
        await wait(driver, "initialised")
        names = []
        while (event := events.get_nowait()) is not None:
            names.append(event.name)
    assert "communication_fault_raised" not in names  # the polls never failed
    assert names.count("public_key_ocmf") == 1
    gw_posts = [e for e in wire(slot, since) if (e.method, e.node) == ("POST", "gw")]
    assert [e.status for e in gw_posts] == [200]  # gw rewritten
    assert slot.meter.gw_written and slot.meter.CI == CI and slot.meter.time_status == "I"
    assert (await driver.start_transaction(make_req())).status is OK  # the C++ driver: gw_not_set forever


async def test_start_right_after_a_power_cycle_sees_ct_empty_and_reinitialises(
    twin: Twin, slot: MeterSlot, driver: IemDcrDriver, clock: SimClock
) -> None:
    """Fix 11 (and fix 2), the GET gw path: the start comes before any poll could notice the restart."""
    with clock.busy():
        await twin.power_cycle(slot.meter.serial)
        with driver.subscribe(["reinitialising"]) as reinit:
            refused = await driver.start_transaction(make_req())
            event = reinit.get_nowait()
    assert refused.status is UNEXPECTED and "Re-init triggered" in (refused.error or "")
    assert event is not None and "CT empty" in event.data
    assert slot.meter.transaction is None
    await wait(driver, "initialised")
    assert (await driver.start_transaction(make_req())).status is OK


async def test_meter_power_cycle_with_off_time_raises_and_recovers(
    twin: Twin, slot: MeterSlot, driver: IemDcrDriver
) -> None:
    since = slot.host.journal.last_seq
    with driver.subscribe(["communication_fault_raised", "reinitialising", "communication_fault_cleared"]) as events:
        await twin.power_cycle(slot.meter.serial, off_s=30)
        await wait(driver, "initialised")
        seen = []
        while (event := events.get_nowait()) is not None:
            seen.append(event)
    assert [e.name for e in seen] == ["communication_fault_raised", "reinitialising", "communication_fault_cleared"]
    assert "poll failed" in seen[1].data
    assert seen[2].time - seen[0].time >= 29.0  # the meter was off for 30 s of virtual time
    gw_posts = [e for e in wire(slot, since) if (e.method, e.node) == ("POST", "gw")]
    assert [e.status for e in gw_posts] == [200]
    assert slot.meter.gw_written


async def test_power_failure_during_transaction_then_stop_returns_its_record(
    twin: Twin, slot: MeterSlot, driver: IemDcrDriver, clock: SimClock
) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    with clock.busy():
        await twin.power_cycle(slot.meter.serial)
    await wait(driver, "initialised")
    assert not driver.transaction_active
    stopped = await driver.stop_transaction("")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    record = stopped.signed_meter_value.signed_meter_data
    assert record == slot.meter.records[-1].ocmf and slot.meter.records[-1].reason == "P"


# ----- live values and public key -------------------------------------------------------------------------


async def test_live_values(slot: MeterSlot, driver: IemDcrDriver, clock: SimClock) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    with driver.subscribe(["powermeter"]) as published:
        slot.meter.set_load(100.0, 500.0)
        await clock.sleep(72)  # 50 kW for 72 s: exactly 1000 Wh imported
        slot.meter.set_load(-40.0)  # export: negative current
        await clock.sleep(36)  # 20 kW back for 36 s: exactly 200 Wh exported
        slot.meter.set_load(0.0)
        done = await wait(driver, "powermeter", lambda e: e.data.current_A.DC == 0.0)
        values = []
        while (event := published.get_nowait()) is not None:
            values.append(event.data)
    importing = [pm for pm in values if pm.current_A.DC == 100.0]
    exporting = [pm for pm in values if pm.current_A.DC == -40.0]
    assert len(importing) >= 60 and len(exporting) >= 30  # about once a second
    assert {(pm.voltage_V.DC, pm.power_W.total) for pm in importing} == {(500.0, 50_000.0)}
    assert {(pm.voltage_V.DC, pm.power_W.total) for pm in exporting} == {(500.0, -20_000.0)}
    imports = [pm.energy_Wh_import.total for pm in importing]
    assert imports == sorted(imports) and 0 < imports[-1] <= 1000.0
    pm = done.data
    assert pm.energy_Wh_import.total == 1000.0  # transaction register RD[2].WV, kWh x 1000
    assert pm.energy_Wh_export.total == 200.0  # RD[3].WV
    value = metervalue(slot.meter)
    assert value["RD"][2]["WV"] == "00000001.000" and value["RD"][3]["WV"] == "00000000.200"
    assert pm.power_W.total == 0.0 and pm.voltage_V.DC == 500.0
    assert pm.meter_id == slot.meter.serial
    assert TM_WITHOUT_LETTER.match(pm.timestamp), pm.timestamp
    assert pm.timestamp == slot.meter.meter_tm(done.time).removesuffix(" I")
    assert pm.timestamp.endswith("+0100")  # the driver wrote local time at its configured offset
    assert driver.last_powermeter == pm


async def test_public_key_equals_the_meters(slot: MeterSlot, make_driver: MakeDriver) -> None:
    drv = make_driver(slot.url)
    await drv.start()
    event = await wait(drv, "public_key_ocmf")
    assert event.data == slot.meter.get_publickey().PK == slot.meter.signer.public_key_hex
    assert drv.public_key_ocmf == event.data


# ----- transactions ---------------------------------------------------------------------------------------


async def test_start_stop_happy_path_verified_by_pyocmf(slot: MeterSlot, driver: IemDcrDriver, clock: SimClock) -> None:
    since = slot.host.journal.last_seq
    started = await driver.start_transaction(make_req(tariff_text="0.49 EUR/kWh"))
    assert started.status is OK and started.error == ""
    assert driver.transaction_active
    await load_for(clock, slot.meter, 100.0, 400.0, 36)
    stopped = await driver.stop_transaction("tx-1")
    assert stopped.status is OK, stopped
    smv = stopped.signed_meter_value
    assert smv is not None
    assert smv.signed_meter_data == slot.meter.records[-1].ocmf == slot.meter.get_receipt()  # byte for byte
    assert smv.encoding_method == "OCMF" and smv.signing_method == ""
    assert smv.public_key == slot.meter.get_publickey().PK
    parsed = OCMF.from_string(smv.signed_meter_data, strict=True)
    assert parsed.verify_signature(smv.public_key) is True
    assert parsed.check_eichrecht(errors_only=True) == []
    data = payload(smv.signed_meter_data)
    assert (data["CT"], data["CI"], data["ID"], data["IT"]) == ("EVSEID", CI, RFID, "ISO14443")
    assert data["RD"][-1]["TX"] == "E"
    assert calls(wire(slot, since)) == [
        ("GET", "v1/ocmf/gw", 200),
        ("POST", "v1/ocmf/receipt E", 428),  # the defensive E, ignored
        ("POST", "v1/ocmf/user", 200),
        ("POST", "v1/ocmf/receipt B", 200),
        ("POST", "v1/ocmf/receipt E", 200),
        ("GET", "v1/ocmf/receipt", 200),
    ]


async def test_start_while_a_transaction_runs_closes_it_first(slot: MeterSlot, driver: IemDcrDriver) -> None:
    """Fix 16: the record of the transaction a start ends is fetched and published as `transaction_ended`."""
    assert (
        await driver.start_transaction(make_req(transaction_id="tx-1", identification_data="AAAA0001"))
    ).status is OK
    since = slot.host.journal.last_seq
    with driver.subscribe(["transaction_ended"]) as ended_events:
        second = await driver.start_transaction(make_req(transaction_id="tx-2", identification_data="BBBB0002"))
        ended = ended_events.get_nowait()
    assert second.status is OK
    assert calls(wire(slot, since))[:4] == [
        ("GET", "v1/ocmf/gw", 200),
        ("POST", "v1/ocmf/receipt E", 200),  # the old one closed first
        ("GET", "v1/ocmf/receipt", 200),  # and its record fetched (C++: never)
        ("POST", "v1/ocmf/user", 200),
    ]
    assert len(slot.meter.records) == 1 and payload(slot.meter.records[0].ocmf)["ID"] == "AAAA0001"
    assert ended is not None and ended.data.transaction_id == "tx-1"
    smv = ended.data.signed_meter_value
    assert smv.signed_meter_data == slot.meter.records[0].ocmf  # byte for byte
    parsed = OCMF.from_string(smv.signed_meter_data, strict=True)
    assert parsed.verify_signature(smv.public_key) is True
    assert ended.to_json()["data"]["signed_meter_value"]["encoding_method"] == "OCMF"
    stopped = await driver.stop_transaction("tx-2")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    assert len(slot.meter.records) == 2
    assert payload(stopped.signed_meter_value.signed_meter_data)["ID"] == "BBBB0002"


async def test_evse_id_not_ci_is_not_supported_and_sends_nothing(slot: MeterSlot, driver: IemDcrDriver) -> None:
    since = slot.host.journal.last_seq
    response = await driver.start_transaction(make_req(evse_id="DE*XYZ*E9999"))
    assert response.status is NOT_SUPPORTED
    assert "CI does not match evse_id" in (response.error or "")
    assert slot.host.journal.last_seq == since  # not even a poll went out in between
    assert slot.meter.transaction is None


async def test_meter_fault_is_unexpected_error_naming_xc(slot: MeterSlot, driver: IemDcrDriver) -> None:
    slot.meter.raise_fault("sensor_unit_fault")
    await wait(driver, "powermeter", lambda e: driver.status_code != HEALTHY_XC)
    since = slot.host.journal.last_seq
    response = await driver.start_transaction(make_req())
    assert response.status is UNEXPECTED
    assert "0x0001, 0x00000000, 0x00, 0x00" in (response.error or "")
    assert wire(slot, since) == []
    slot.meter.clear_fault("sensor_unit_fault")
    await wait(driver, "powermeter", lambda e: driver.status_code == HEALTHY_XC)
    assert (await driver.start_transaction(make_req())).status is OK


async def test_start_and_stop_refused_above_activation_threshold(slot: MeterSlot, driver: IemDcrDriver) -> None:
    slot.meter.set_load(20.0, 400.0)
    await wait(driver, "powermeter", lambda e: e.data.current_A.DC == 20.0)
    since = slot.host.journal.last_seq
    refused = await driver.start_transaction(make_req())
    assert refused.status is UNEXPECTED and "current_above_threshold" in (refused.error or "")
    begins = [c for c in calls(wire(slot, since)) if c[1] == "v1/ocmf/receipt B"]
    assert begins == [("POST", "v1/ocmf/receipt B", 428)] * 4  # 1 + 3 retries
    slot.meter.set_load(0.0)
    assert (await driver.start_transaction(make_req())).status is OK  # the same command, now below
    slot.meter.set_load(20.0)
    since = slot.host.journal.last_seq
    refused_stop = await driver.stop_transaction("")
    assert refused_stop.status is UNEXPECTED and "current_above_threshold" in (refused_stop.error or "")
    assert calls(wire(slot, since, polls=True)) == [("POST", "v1/ocmf/receipt E", 428)] * 4 + [
        ("GET", "v1/ocmf/metervalue", 200)  # fix 9: one fresh look at XT before giving up
    ]
    assert slot.meter.transaction is not None
    slot.meter.set_load(0.0)
    stopped = await driver.stop_transaction("")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    assert stopped.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf


async def test_identification_data_or_transaction_id_as_id(slot: MeterSlot, driver: IemDcrDriver) -> None:
    assert (await driver.start_transaction(make_req(transaction_id="tx-77", identification_data=None))).status is OK
    assert slot.meter.user is not None and slot.meter.user.ID == "tx-77"
    first = await driver.stop_transaction("tx-77")
    assert first.signed_meter_value is not None
    assert payload(first.signed_meter_value.signed_meter_data)["ID"] == "tx-77"
    assert (await driver.start_transaction(make_req(transaction_id="tx-78", identification_data=""))).status is OK
    assert slot.meter.user.ID == "tx-78"  # empty identification_data counts as absent
    await driver.stop_transaction("")
    assert (await driver.start_transaction(make_req(transaction_id="tx-79", identification_data=RFID))).status is OK
    assert slot.meter.user.ID == RFID
    last = await driver.stop_transaction("")
    assert last.signed_meter_value is not None
    assert payload(last.signed_meter_value.signed_meter_data)["ID"] == RFID


@pytest.mark.parametrize(("v1_transaction", "nodes"), [(True, ["v1"]), (False, ["v1", "v2"])])
async def test_stop_with_no_transaction_returns_the_last_record(
    make_meter: MakeMeter, make_driver: MakeDriver, v1_transaction: bool, nodes: list[str]
) -> None:
    slot = await make_meter(v1_transaction=v1_transaction)
    drv = await started(make_driver(slot.url))
    assert (await drv.start_transaction(make_req())).status is OK
    first = await drv.stop_transaction("")
    since = slot.host.journal.last_seq
    again = await drv.stop_transaction("")
    assert again.status is OK, again
    assert again.signed_meter_value == first.signed_meter_value
    assert again.signed_meter_value is not None
    assert again.signed_meter_value.signed_meter_data == slot.meter.get_transaction()
    expected = [("POST", "v1/ocmf/receipt E", 428)]  # one try, no retries: the last poll said idle
    expected += [("GET", f"{node}/ocmf/transaction", 200 if node == nodes[-1] else 404) for node in nodes]
    assert calls(wire(slot, since)) == expected


async def test_stop_when_there_never_was_a_transaction(slot: MeterSlot, driver: IemDcrDriver) -> None:
    since = slot.host.journal.last_seq
    response = await driver.stop_transaction("")
    assert response.status is UNEXPECTED
    assert "Maybe no transaction to return?" in (response.error or "")
    assert calls(wire(slot, since)) == [
        ("POST", "v1/ocmf/receipt E", 428),
        ("GET", "v1/ocmf/transaction", 404),
        ("GET", "v2/ocmf/transaction", 404),
    ]


async def test_fault_ending_the_transaction_before_a_poll_stop_returns_its_record(
    slot: MeterSlot, driver: IemDcrDriver
) -> None:
    """Fix 9 on the twin: the driver believes a transaction runs, E fails, a fresh poll shows XT false."""
    assert (await driver.start_transaction(make_req())).status is OK
    since = slot.host.journal.last_seq
    slot.meter.raise_fault("sensor_unit_fault")  # ends it with reason A; receipts now answer 503
    assert driver.transaction_active  # no poll since
    stopped = await driver.stop_transaction("")
    assert stopped.status is OK, stopped
    assert stopped.signed_meter_value is not None
    assert stopped.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf
    assert slot.meter.records[-1].reason == "A"
    assert calls(wire(slot, since, polls=True)) == [("POST", "v1/ocmf/receipt E", 503)] * 4 + [
        ("GET", "v1/ocmf/metervalue", 200),
        ("GET", "v1/ocmf/transaction", 200),
    ]
    assert not driver.transaction_active


async def test_signature_unit_fault_keeps_the_transaction_open_and_stop_fails(
    slot: MeterSlot, driver: IemDcrDriver
) -> None:
    assert (await driver.start_transaction(make_req())).status is OK
    slot.meter.raise_fault("signature_unit_fault")
    stopped = await driver.stop_transaction("")
    assert stopped.status is UNEXPECTED and "503" in (stopped.error or "")
    assert slot.meter.transaction is not None and driver.transaction_active
    slot.meter.clear_fault("signature_unit_fault")
    stopped = await driver.stop_transaction("")
    assert stopped.status is OK and stopped.signed_meter_value is not None
    assert stopped.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf


async def test_signature_delay_is_covered_by_the_receipt_retries(
    make_meter: MakeMeter, make_driver: MakeDriver
) -> None:
    slot = await make_meter(signature_delay_ms=700)
    drv = await started(make_driver(slot.url))
    assert (await drv.start_transaction(make_req())).status is OK
    since = slot.host.journal.last_seq
    stopped = await drv.stop_transaction("")
    assert stopped.status is OK, stopped
    assert stopped.signed_meter_value is not None
    assert stopped.signed_meter_value.signed_meter_data == slot.meter.records[-1].ocmf
    receipts = [(e.status, e.sim_time) for e in wire(slot, since) if (e.method, e.node) == ("GET", "receipt")]
    assert [status for status, _ in receipts] == [425, 425, 200]  # after 250, 500, 750 ms
    assert receipts[-1][1] - receipts[0][1] == pytest.approx(0.5)


async def test_clock_lost_resynchronises_the_time_once(slot: MeterSlot, driver: IemDcrDriver, clock: SimClock) -> None:
    slot.meter.raise_fault("clock_lost")
    reinit = await wait(driver, "reinitialising")
    assert "time status is U" in reinit.data
    await wait(driver, "initialised")
    await clock.sleep(5)
    assert slot.meter.time_status == "I"  # the driver wrote the time again (POST datetime while idle)
    reinits = [e for e in driver.events.history if e.name == "reinitialising"]
    assert len(reinits) == 1  # no re-init loop
    datetimes = [e for e in wire(slot) if (e.method, e.node) == ("POST", "datetime")]
    assert [e.status for e in datetimes] == [200]


# ----- fixes 12-17 on the twin ----------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["+0100", "Europe/Berlin"])
async def test_fix12_meter_clock_names_the_true_instant_in_summer(
    slot: MeterSlot, make_driver: MakeDriver, clock: SimClock, zone: str
) -> None:
    """T0 is 2025-06-15 15:06:40 UTC: summer, so +0200; the meter's clock then names the true instant."""
    await started(make_driver(slot.url, timezone=zone, timezone_handle_DST=True))
    [gw] = [e for e in wire(slot) if (e.method, e.node) == ("POST", "gw")]
    assert gw.body["TM"] == "2025-06-15T17:06:40,000+0200"  # C++ on a Berlin host: 17:06:40,000+0100
    shown = slot.meter.meter_tm().removesuffix(" I")
    named = datetime.strptime(shown, "%Y-%m-%dT%H:%M:%S,%f%z").timestamp()
    assert named == pytest.approx(clock.now(), abs=0.001)


async def test_fix13_stop_after_a_threshold_refusal_gets_no_record(slot: MeterSlot, driver: IemDcrDriver) -> None:
    assert (
        await driver.start_transaction(make_req(transaction_id="tx-1", identification_data="AAAA1111"))
    ).status is OK
    first = await driver.stop_transaction("tx-1")
    assert first.status is OK and first.signed_meter_value is not None
    slot.meter.set_load(25.0, 400.0)
    refused = await driver.start_transaction(make_req(transaction_id="tx-2", identification_data="AAAA1111"))
    assert refused.status is UNEXPECTED
    since = slot.host.journal.last_seq
    stopped = await driver.stop_transaction("tx-2")
    assert stopped.status is UNEXPECTED and stopped.signed_meter_value is None
    assert "never began" in stopped.error and "current_above_threshold" in stopped.error
    assert wire(slot, since) == []
    assert len(slot.meter.records) == 1


async def test_fix14_two_second_signature_is_awaited(make_meter: MakeMeter, make_driver: MakeDriver) -> None:
    slot = await make_meter(signature_delay_ms=2000)
    drv = await started(make_driver(slot.url))
    assert (await drv.start_transaction(make_req())).status is OK
    since = slot.host.journal.last_seq
    stopped = await drv.stop_transaction("")
    assert stopped.status is OK, stopped  # C++: UNEXPECTED_ERROR after four 425 answers
    assert stopped.signed_meter_value is not None
    record = stopped.signed_meter_value.signed_meter_data
    assert record == slot.meter.records[-1].ocmf
    assert OCMF.from_string(record, strict=True).verify_signature(stopped.signed_meter_value.public_key) is True
    receipts = [(e.status, e.sim_time) for e in wire(slot, since) if (e.method, e.node) == ("GET", "receipt")]
    assert [status for status, _ in receipts] == [425] * 7 + [200]
    assert receipts[-1][1] - receipts[0][1] == pytest.approx(1.75)


async def test_fix15_a_field_the_meter_refuses_is_sent_once_and_named(slot: MeterSlot, driver: IemDcrDriver) -> None:
    since = slot.host.journal.last_seq
    response = await driver.start_transaction(make_req(identification_data="A" * 70))
    assert response.status is UNEXPECTED
    users = [e for e in wire(slot, since) if (e.method, e.node) == ("POST", "user")]
    assert [e.status for e in users] == [400]  # before fix 15: four identical 400s
    assert "(field ID)" in response.error and "bad_value" in response.error, response.error


async def test_fix17_clock_lost_writes_only_the_time(slot: MeterSlot, driver: IemDcrDriver, clock: SimClock) -> None:
    since = slot.host.journal.last_seq
    slot.meter.raise_fault("clock_lost")
    await wait(driver, "reinitialising")
    await wait(driver, "initialised")
    assert [c for c in calls(wire(slot, since)) if c[0] == "POST"] == [("POST", "v1/ocmf/datetime", 200)]
    assert [e.name for e in driver.events.history].count("warning") == 0
