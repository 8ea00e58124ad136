"""The asyncio driver: init with unlimited retries, the 1 Hz live loop, and the transaction commands."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TypeVar

from iemdcr_twin.driver.client import MeterHttpClient
from iemdcr_twin.driver.clock import Clock
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.controller import HEALTHY_XC, MeterController, MeterReading, call_with_retry
from iemdcr_twin.driver.errors import MeterError, TransportError, UnexpectedStatus
from iemdcr_twin.driver.events import (
    COMMUNICATION_FAULT_CLEARED,
    COMMUNICATION_FAULT_RAISED,
    INITIALISED,
    POWERMETER,
    PUBLIC_KEY_OCMF,
    REINITIALISING,
    WARNING,
    DriverEvent,
    EventBus,
    Predicate,
    Subscription,
)
from iemdcr_twin.driver.types import (
    Powermeter,
    SignedMeterValue,
    TransactionReq,
    TransactionRequestStatus,
    TransactionStartResponse,
    TransactionStopResponse,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_INTERVAL_S = 1.0
IDLE_WAIT_S = 0.25  # after E: lets the meter settle into idle / finish the signature
DATETIME_BACKOFF_START_S = 1.0
NOT_INITIALISED = "Init of communication not finished yet."


class IemDcrDriver:
    """One IEM-DCR behind the EVerest powermeter interface.

    Lifecycle: `await start()` / `await stop()` or `async with IemDcrDriver(cfg) as drv:`. A background task
    initialises the meter (forever, every `resilience_initial_connection_retry_delay` ms) and then polls it
    once a second. Commands may be called concurrently with it: a lock serialises them with the loop's
    passes (the C++ "command running" flags, but released on every path, fix 1).
    """

    def __init__(
        self,
        config: DriverConfig,
        *,
        clock: Clock | None = None,
        client: MeterHttpClient | None = None,
    ) -> None:
        if clock is not None:
            config = dataclasses.replace(config, clock=clock)
        self.config = config
        self.clock: Clock = config.clock
        self._client = client or MeterHttpClient(config.base_url, config.request_timeout_s)
        self._meter = MeterController(self._client, config)
        self.events = EventBus(self.clock.now)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._initialised = False
        self._transaction_active = False
        self._status_code: str | None = None
        self._time_written = False
        self._fault_active = False
        self._next_datetime_sync = float("-inf")
        self._datetime_backoff_s = DATETIME_BACKOFF_START_S
        self.last_powermeter: Powermeter | None = None

    # ----- state, read-only for callers -------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return self._initialised

    @property
    def transaction_active(self) -> bool:
        """XT of the last poll, or what the last command did since."""
        return self._transaction_active

    @property
    def status_code(self) -> str | None:
        """XC of the last poll; None before the first one."""
        return self._status_code

    @property
    def communication_fault_active(self) -> bool:
        return self._fault_active

    @property
    def public_key(self) -> str:
        return self._meter.public_key

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ----- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=f"iemdcr-driver {self.config.base_url}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.close()

    async def __aenter__(self) -> IemDcrDriver:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ----- events -----------------------------------------------------------------------------------
    async def wait_for(
        self, name: str, predicate: Predicate | None = None, *, include_past: bool = False
    ) -> DriverEvent:
        return await self.events.wait_for(name, predicate, include_past=include_past)

    def subscribe(self, names: Iterable[str] | None = None) -> Subscription:
        return self.events.subscribe(names)

    # ----- the live loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                async with self._lock:
                    delay = await (self._poll_pass() if self._initialised else self._init_pass())
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the loop must outlive any surprise
                log.exception("unexpected error in the live loop")
                self._lose_init(f"unexpected error in the live loop: {error!r}")
                delay = POLL_INTERVAL_S
            await self.clock.sleep(delay)

    async def _init_pass(self) -> float:
        """One init attempt; returns how long to sleep before the next pass."""
        self._time_written = False
        try:
            await self._meter.get_gw()
            try:
                await self._meter.post_gw()
                self._time_written = True
                self._datetime_synced()
            except UnexpectedStatus as error:
                self._warn(
                    f"gw already set this power cycle; CT/CI stay as they are until the meter restarts ({error})"
                )
                self._next_datetime_sync = float("-inf")  # our time was not written: resync when idle
            if self.config.TT_initial:
                try:
                    await self._meter.post_tariff(self.config.TT_initial)
                except UnexpectedStatus as error:
                    self._warn(f"TT_initial could not be set; check its value ({error})")
            key = await self._meter.get_publickey()
            reading = await self._meter.get_metervalue()  # fix 8: XC and XT known when init ends
        except MeterError as error:
            delay_s = self.config.resilience_initial_connection_retry_delay / 1000
            log.warning("initialisation failed: %s; retry in %g s", error, delay_s)
            self._raise_fault(f"initialisation failed: {error}")
            return delay_s
        self._initialised = True
        self.events.emit(PUBLIC_KEY_OCMF, key)
        self._apply_reading(reading)
        log.info("IEM-DCR initialised at %s", self.config.base_url)
        self.events.emit(INITIALISED, None)
        return POLL_INTERVAL_S

    async def _poll_pass(self) -> float:
        try:
            reading = await self._meter.get_metervalue()
        except MeterError as error:
            log.error("poll failed: %s", error)
            if isinstance(error, TransportError):
                self._raise_fault(f"Communication timed out: {error}")
            self._lose_init(f"poll failed: {error}")
            return POLL_INTERVAL_S
        self._apply_reading(reading)
        if reading.time_status == "U":
            if self._time_written:
                self._lose_init(
                    "meter time status is U although the driver set the time: the meter restarted or lost its clock"
                )
                return POLL_INTERVAL_S
            # Our POST gw was refused at init (gw already set), so U alone proves nothing (clock_lost does
            # it too); an empty CT does: the meter restarted before our first poll (fix 11).
            try:
                restarted = await self._meter.gw_is_empty()
            except MeterError as error:
                self._lose_init(f"GET gw failed: {error}")
                return POLL_INTERVAL_S
            if restarted:
                self._lose_init("GET gw shows CT empty: the meter restarted and lost its configuration")
                return POLL_INTERVAL_S
        if not reading.transaction_active:
            await self._resync_datetime_if_due()
        return POLL_INTERVAL_S

    def _apply_reading(self, reading: MeterReading) -> None:
        self._status_code = reading.status_code
        self._transaction_active = reading.transaction_active
        self.last_powermeter = reading.powermeter
        self.events.emit(POWERMETER, reading.powermeter)
        self._clear_fault()

    async def _resync_datetime_if_due(self) -> None:
        """POST datetime every resync interval while idle; after a failure back off (fix 7)."""
        now = self.clock.now()
        if now < self._next_datetime_sync:
            return
        try:
            await self._meter.post_datetime()
        except MeterError as error:
            self._next_datetime_sync = now + self._datetime_backoff_s
            log.warning("datetime resync failed: %s; next try in %g s", error, self._datetime_backoff_s)
            self._datetime_backoff_s = min(self._datetime_backoff_s * 2, self._resync_interval_s)
            return
        self._time_written = True
        self._datetime_synced()
        log.info("meter datetime resynchronised")

    @property
    def _resync_interval_s(self) -> float:
        return self.config.datetime_resync_interval * 3600.0

    def _datetime_synced(self) -> None:
        self._next_datetime_sync = self.clock.now() + self._resync_interval_s
        self._datetime_backoff_s = DATETIME_BACKOFF_START_S

    def _raise_fault(self, message: str) -> None:
        if not self._fault_active:
            self._fault_active = True
            self.events.emit(COMMUNICATION_FAULT_RAISED, message)

    def _clear_fault(self) -> None:
        if self._fault_active:
            self._fault_active = False
            self.events.emit(COMMUNICATION_FAULT_CLEARED, "communication with the meter restored")

    def _lose_init(self, reason: str) -> None:
        """Mark not initialised; the next pass of the loop runs init again (fix 11 uses this too)."""
        if self._initialised:
            self._initialised = False
            log.warning("re-initialising: %s", reason)
            self.events.emit(REINITIALISING, reason)

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        self.events.emit(WARNING, message)

    # ----- commands ---------------------------------------------------------------------------------
    async def start_transaction(self, req: TransactionReq) -> TransactionStartResponse:
        """Close any open transaction, write the user block, begin: EVerest's start_transaction."""
        if req.evse_id and req.evse_id != self.config.CI:
            return _start_error(
                f"config: CI does not match evse_id ({req.evse_id!r} != {self.config.CI!r}). This is not allowed.",
                TransactionRequestStatus.NOT_SUPPORTED,
            )
        if not self._initialised:
            return _start_error(f"{NOT_INITIALISED} Please try again later.")
        async with self._lock:  # released on every return: fix 1
            if not self._initialised:
                return _start_error(f"{NOT_INITIALISED} Please try again later.")
            if self._status_code != HEALTHY_XC:
                # Fix 6: UNEXPECTED_ERROR (what the C++ code does), not NOT_SUPPORTED (what its docs say).
                return _start_error(f"IEM-DCR is in error state. XC: {self._status_code}")
            try:
                if await self._meter.gw_is_empty():
                    self._lose_init("GET gw shows CT empty: the meter restarted and lost its configuration")
                    return _start_error(
                        "Init seems to be missing (CT is empty on the meter). Re-init triggered. "
                        "Please try again later."
                    )
                if self._transaction_active:
                    await self._retry(lambda: self._meter.post_receipt("E"), "POST receipt E")
                else:
                    try:  # defensive: close a transaction the last poll may not have seen
                        await self._meter.post_receipt("E")
                    except MeterError as error:
                        log.debug("defensive POST receipt E refused (normal when idle): %s", error)
                await self.clock.sleep(IDLE_WAIT_S)
                await self._retry(lambda: self._meter.post_user(req), "POST user")
                await self._retry(lambda: self._meter.post_receipt("B"), "POST receipt B")
            except MeterError as error:
                return _start_error(f"start_transaction failed: {error}")  # fix 4: the detailed reason
            self._transaction_active = True
            return TransactionStartResponse(status=TransactionRequestStatus.OK)

    async def stop_transaction(self, transaction_id: str = "") -> TransactionStopResponse:
        """End the running transaction and return its record, or return the last record when idle.

        transaction_id is ignored, as in the C++ module: the meter has at most one transaction. The last
        poll's XT decides the path (driver.md §2), made robust to a stale poll (fix 9):
        - believed idle: ONE POST receipt E (a transaction the poll missed is ended and its receipt
          returned); if it is refused, the last finished record (v1, then v2);
        - believed running: E with retries; when they are exhausted, poll metervalue once: XT false means
          the transaction ended meanwhile, so return the last record, else UNEXPECTED_ERROR.
        """
        if not self._initialised:  # fix 10: answer at once, never wait behind an init in progress
            return _stop_error(NOT_INITIALISED)
        async with self._lock:
            if not self._initialised:
                return _stop_error(NOT_INITIALISED)
            if self._transaction_active:
                try:
                    await self._retry(lambda: self._meter.post_receipt("E"), "POST receipt E")
                except MeterError as error:
                    return await self._after_failed_end(error)
            else:
                try:  # one try: closes a transaction the last poll may not have seen
                    await self._meter.post_receipt("E")
                except MeterError as error:
                    log.debug("POST receipt E refused while idle (normal): %s", error)
                    return await self._last_record()
            self._transaction_active = False
            await self.clock.sleep(IDLE_WAIT_S)
            try:
                record = await self._retry(self._meter.get_receipt, "GET receipt")
            except MeterError as error:
                return _stop_error(f"stop_transaction: transaction ended but reading its record failed: {error}")
            return TransactionStopResponse(status=TransactionRequestStatus.OK, signed_meter_value=record)

    async def _after_failed_end(self, error: MeterError) -> TransactionStopResponse:
        """E exhausted its retries although a transaction was believed running: ask the meter once more."""
        try:
            reading = await self._meter.get_metervalue()
        except MeterError as poll_error:
            return _stop_error(f"stop_transaction failed: {error}; polling metervalue then failed too: {poll_error}")
        self._apply_reading(reading)
        if reading.transaction_active:
            return _stop_error(f"stop_transaction failed: {error}")
        log.info("POST receipt E failed but the meter shows no transaction: returning the last record")
        return await self._last_record()

    async def _last_record(self) -> TransactionStopResponse:
        try:
            record: SignedMeterValue = await self._meter.get_transaction()
        except MeterError as error:
            return _stop_error(f"{error} Maybe no transaction to return?")
        return TransactionStopResponse(status=TransactionRequestStatus.OK, signed_meter_value=record)

    async def _retry(self, action: Callable[[], Awaitable[T]], what: str) -> T:
        """The C++ call_with_retry with the transaction retry settings."""
        return await call_with_retry(
            action,
            self.config.resilience_transaction_request_retries,
            self.config.resilience_transaction_request_retry_delay,
            self.clock,
            what,
        )


def _start_error(
    message: str, status: TransactionRequestStatus = TransactionRequestStatus.UNEXPECTED_ERROR
) -> TransactionStartResponse:
    log.error("start_transaction aborted: %s", message)
    return TransactionStartResponse(status=status, error=message)


def _stop_error(message: str) -> TransactionStopResponse:
    log.error("stop_transaction aborted: %s", message)
    return TransactionStopResponse(status=TransactionRequestStatus.UNEXPECTED_ERROR, error=message)
