"""The driver's behaviour kept from EVerest (driver.md §2), against the fake meter in virtual time."""

from __future__ import annotations

import itertools

from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import DriverEvent
from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    TransactionReq,
    TransactionRequestStatus,
)

from .conftest import MakeDriver
from .fake_meter import PK, FakeMeter
from .vclock import VirtualClock


def make_req(**overrides: object) -> TransactionReq:
    fields: dict[str, object] = {
        "evse_id": "1234",
        "transaction_id": "tx-1",
        "identification_status": OCMFUserIdentificationStatus.ASSIGNED,
        "identification_type": OCMFIdentificationType.ISO14443,
        "identification_flags": [OCMFIdentificationFlags.RFID_PLAIN, OCMFIdentificationFlags.OCPP_AUTH],
        "identification_level": OCMFIdentificationLevel.VERIFIED,
    }
    fields.update(overrides)
    return TransactionReq(**fields)  # type: ignore[arg-type]


async def test_init_sequence_and_public_key(make_driver: MakeDriver, meter: FakeMeter) -> None:
    drv = await make_driver(TT_initial="0.40 EUR/kWh")
    with drv.subscribe() as events:
        await drv.start()
        await drv.wait_for("initialised")
        names = []
        while (event := events.get_nowait()) is not None:
            names.append(event.name)
    assert [(s.method, s.node) for s in meter.seen[:5]] == [
        ("GET", "gw"),
        ("POST", "gw"),
        ("POST", "tariff"),
        ("GET", "publickey"),
        ("GET", "metervalue"),
    ]
    assert meter.seen[1].body["CT"] == "EVSEID" and meter.seen[1].body["CI"] == "1234"
    assert meter.seen[2].body == {"TT": "0.40 EUR/kWh"}
    assert names == ["public_key_ocmf", "powermeter", "initialised"]
    assert drv.public_key_ocmf == PK
    assert drv.events.history[0].data == PK


async def test_tm_sent_is_local_time_at_offset(make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock) -> None:
    drv = await make_driver(timezone="-0230")
    await drv.start()
    await drv.wait_for("initialised")
    tm = meter.requests("POST", "gw")[0].body["TM"]
    assert tm.endswith(",000-0230") and len(tm) == 28
    # 1_750_000_000 is 2025-06-15T15:06:40Z; at -02:30 that is 12:36:40
    assert tm.startswith("2025-06-15T12:36:40")


async def test_live_values(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.current_a, meter.voltage_v = 0.5, 812.5
    meter.tx_import_mwh, meter.tx_export_mwh = 446_540, 1_040
    event = await driver.wait_for("powermeter", lambda e: e.data.current_A.DC == 0.5)
    pm = event.data
    assert pm.voltage_V.DC == 812.5
    assert pm.power_W.total == 406.25
    assert pm.energy_Wh_import.total == 446_540.0
    assert pm.energy_Wh_export.total == 1_040.0
    assert pm.meter_id == "1ISA0200000001"
    assert len(pm.timestamp) == 28 and pm.timestamp.endswith("+0100")
    assert pm.to_json()["current_A"] == {"DC": 0.5}


async def test_polls_about_once_a_second(driver: IemDcrDriver, clock: VirtualClock) -> None:
    times = []
    for _ in range(4):
        times.append((await driver.wait_for("powermeter")).time)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.9 <= gap <= 1.6 for gap in gaps), gaps


async def test_powered_off_meter_then_power_on(make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock) -> None:
    meter.powered = False
    drv = await make_driver()
    await drv.start()
    raised = await drv.wait_for("communication_fault_raised")
    assert "initialisation failed" in raised.data
    assert not drv.initialised
    started = clock.now()
    # init retries every resilience_initial_connection_retry_delay (10 s) forever
    await drv.wait_for("communication_fault_raised", include_past=True)
    await clock.sleep(35)
    attempts = sorted({s.at for s in meter.requests("GET", "gw")})  # aiohttp may resend on a disconnect
    assert len(attempts) in (4, 5)
    assert all(9.9 <= b - a <= 10.5 for a, b in itertools.pairwise(attempts)), attempts
    meter.powered = True
    await drv.wait_for("communication_fault_cleared")
    await drv.wait_for("initialised", include_past=True)
    assert drv.initialised and not drv.communication_fault_active
    assert clock.now() - started >= 30


async def test_driver_restart_without_meter_power_cycle(make_driver: MakeDriver, meter: FakeMeter) -> None:
    first = await make_driver()
    await first.start()
    await first.wait_for("initialised")
    await first.stop()
    second = await make_driver(CI="5678")  # another CI: POST gw again, refused (the same CI: fix 17)
    with second.subscribe(["warning"]) as warnings:
        await second.start()
        await second.wait_for("initialised")
        warning = warnings.get_nowait()
    assert warning is not None and "gw already set" in warning.data and "428" in warning.data
    assert "CI='1234'" in warning.data and "CI='5678'" in warning.data  # both values named (fix 17)
    assert len(meter.requests("POST", "gw")) == 2
    # its own time was not written: it resyncs the clock on the first idle poll
    await second.wait_for("powermeter")
    await second.wait_for("powermeter")
    assert len(meter.requests("POST", "datetime")) == 1


async def test_datetime_resync_every_interval_while_idle(
    make_driver: MakeDriver, meter: FakeMeter, clock: VirtualClock
) -> None:
    meter.threshold_a = 1e9
    drv = await make_driver(datetime_resync_interval=1)
    await drv.start()
    await drv.wait_for("initialised")
    meter.xt = True  # a running transaction: no resync
    await clock.sleep(3700)
    assert meter.requests("POST", "datetime") == []
    meter.xt = False
    await drv.wait_for("powermeter", lambda e: True)
    await drv.wait_for("powermeter")
    assert len(meter.requests("POST", "datetime")) == 1
    await clock.sleep(1800)
    assert len(meter.requests("POST", "datetime")) == 1


async def test_start_stop_happy_path(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.seen.clear()
    started = await driver.start_transaction(make_req(tariff_text="0.40 EUR/kWh"))
    assert started.status is TransactionRequestStatus.OK, started
    assert [(s.method, s.node) for s in meter.seen if s.node != "metervalue"] == [
        ("GET", "gw"),
        ("POST", "receipt"),
        ("POST", "user"),
        ("POST", "receipt"),
    ]
    user = meter.requests("POST", "user")[0].body
    assert user == {
        "IS": True,
        "IL": "VERIFIED",
        "IF": ["RFID_PLAIN", "OCPP_AUTH"],
        "IT": "ISO14443",
        "ID": "tx-1",
        "US": False,
        "TT": "0.40 EUR/kWh",
    }
    assert [s.body for s in meter.requests("POST", "receipt")] == [{"TX": "E"}, {"TX": "B"}]
    assert meter.xt
    stopped = await driver.stop_transaction("tx-1")
    assert stopped.status is TransactionRequestStatus.OK, stopped
    smv = stopped.signed_meter_value
    assert smv is not None
    assert smv.signed_meter_data == meter.records[-1]  # byte for byte
    assert (smv.signing_method, smv.encoding_method, smv.public_key) == ("", "OCMF", PK)
    assert stopped.to_json()["signed_meter_value"]["encoding_method"] == "OCMF"


async def test_user_block_defaults(driver: IemDcrDriver, meter: FakeMeter) -> None:
    req = make_req(
        identification_level=None,
        identification_flags=[],
        identification_status=OCMFUserIdentificationStatus.NOT_ASSIGNED,
        identification_data="",
    )
    assert (await driver.start_transaction(req)).status is TransactionRequestStatus.OK
    user = meter.requests("POST", "user")[0].body
    assert user["IL"] == "UNKNOWN" and user["IF"] == [] and user["IS"] is False
    assert user["ID"] == "tx-1" and "TT" not in user


async def test_identification_data_is_the_id(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req(identification_data="04A1B2C3"))).status.value == "OK"
    assert meter.requests("POST", "user")[0].body["ID"] == "04A1B2C3"
    assert "04A1B2C3" in (await driver.stop_transaction("")).signed_meter_value.signed_meter_data  # type: ignore[union-attr]


async def test_start_while_transaction_running_closes_it(driver: IemDcrDriver, meter: FakeMeter) -> None:
    assert (await driver.start_transaction(make_req())).status.value == "OK"
    assert (await driver.start_transaction(make_req(transaction_id="tx-2"))).status.value == "OK"
    assert len(meter.records) == 1 and meter.xt
    assert (await driver.stop_transaction("tx-2")).status.value == "OK"
    assert len(meter.records) == 2


async def test_evse_id_not_ci_is_not_supported_and_sends_nothing(driver: IemDcrDriver, meter: FakeMeter) -> None:
    before = len([s for s in meter.seen if s.node != "metervalue"])
    response = await driver.start_transaction(make_req(evse_id="other"))
    assert response.status is TransactionRequestStatus.NOT_SUPPORTED
    assert "CI does not match evse_id" in (response.error or "")
    assert len([s for s in meter.seen if s.node != "metervalue"]) == before
    assert (await driver.start_transaction(make_req(evse_id=""))).status.value == "OK"


async def test_threshold_refusal_then_success(driver: IemDcrDriver, meter: FakeMeter, clock: VirtualClock) -> None:
    meter.current_a = 20.0
    await driver.wait_for("powermeter", lambda e: e.data.current_A.DC == 20.0)
    refused = await driver.start_transaction(make_req())
    assert refused.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert "current_above_threshold" in (refused.error or "")
    assert len([s for s in meter.requests("POST", "receipt") if s.body == {"TX": "B"}]) == 4  # 1 + 3 retries
    meter.current_a = 0.0
    assert (await driver.start_transaction(make_req())).status.value == "OK"
    meter.current_a = 20.0
    refused_stop = await driver.stop_transaction("")
    assert refused_stop.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert "current_above_threshold" in (refused_stop.error or "")
    meter.current_a = 0.0
    assert (await driver.stop_transaction("")).status.value == "OK"


async def test_stop_without_transaction_returns_last_record(driver: IemDcrDriver, meter: FakeMeter) -> None:
    await driver.start_transaction(make_req())
    first = await driver.stop_transaction("")
    again = await driver.stop_transaction("")
    assert again.status is TransactionRequestStatus.OK
    assert again.signed_meter_value == first.signed_meter_value
    assert meter.requests("GET", "transaction") and not meter.requests("GET", "v2/transaction")


async def test_stop_while_idle_tries_e_once(driver: IemDcrDriver, meter: FakeMeter, clock: VirtualClock) -> None:
    await driver.start_transaction(make_req())
    await driver.stop_transaction("")
    ends_before = len([s for s in meter.requests("POST", "receipt") if s.body == {"TX": "E"}])
    sleeps_before = len(clock.sleeps)
    assert not driver.transaction_active
    again = await driver.stop_transaction("")
    assert again.status is TransactionRequestStatus.OK
    ends = [s for s in meter.requests("POST", "receipt") if s.body == {"TX": "E"}]
    assert len(ends) == ends_before + 1  # one ignored try, not 1 + retries
    assert 0.25 not in clock.sleeps[sleeps_before:]  # no retry delay, no idle wait


async def test_stop_falls_back_to_v2(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.v1_transaction = False
    await driver.start_transaction(make_req())
    await driver.stop_transaction("")
    again = await driver.stop_transaction("")
    assert again.status is TransactionRequestStatus.OK
    assert again.signed_meter_value is not None and again.signed_meter_value.signed_meter_data == meter.records[-1]
    assert meter.requests("GET", "v2/transaction")


async def test_stop_when_there_never_was_a_transaction(driver: IemDcrDriver) -> None:
    response = await driver.stop_transaction("")
    assert response.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert (response.error or "").endswith("Maybe no transaction to return?")
    assert "v2/ocmf/transaction answered 404" in (response.error or "")


async def test_meter_fault_gives_unexpected_error_naming_xc(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.xc = "0x0001, 0x00000000, 0x00, 0x00"
    await driver.wait_for("powermeter")
    await driver.wait_for("powermeter")
    response = await driver.start_transaction(make_req())
    assert response.status is TransactionRequestStatus.UNEXPECTED_ERROR
    assert response.error == "IEM-DCR is in error state. XC: 0x0001, 0x00000000, 0x00, 0x00"
    assert meter.requests("POST", "user") == []


async def test_poll_failure_reinitialises(driver: IemDcrDriver, meter: FakeMeter) -> None:
    meter.override("GET", "metervalue", status=500, body='{"error":"x"}', times=1)
    event: DriverEvent = await driver.wait_for("reinitialising")
    assert "500" in event.data
    assert not driver.communication_fault_active  # a 500 is an answer, not a transport failure
    await driver.wait_for("initialised")
    assert driver.initialised


async def test_bad_answers_never_crash_the_loop(driver: IemDcrDriver, meter: FakeMeter) -> None:
    bad = [
        "<html>oops</html>",
        "[1, 2]",
        '{"MS": "x"}',
        '{"MS":"x","TM":"t","XT":false,"XC":"c","I":1,"U2":1,"P":1,"RD":[{},{}]}',
        '{"MS":"x","TM":"t","XT":"no","XC":"c","I":1,"U2":1,"P":1,"RD":[]}',
    ]
    for body in bad:
        meter.override("GET", "metervalue", body=body, times=1)
        reason = (await driver.wait_for("reinitialising")).data
        assert "unexpected response body" in reason
        await driver.wait_for("initialised")
    assert driver.running and driver.initialised
