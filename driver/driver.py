"""The asyncio driver: init with unlimited retries, the 1 Hz live loop, and the transaction commands."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TypeVar

from iemdcr_twin.driver.client import MeterHttpClient
from iemdcr_twin.driver.clock import Clock
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.controller import (
    HEALTHY_XC,
    MeterController,
    MeterReading,
    call_with_retry,
    record_identity,
)
from iemdcr_twin.driver.errors import MeterError, TransportError, UnexpectedStatus
from iemdcr_twin.driver.events import (
    COMMUNICATION_FAULT_CLEARED,
    COMMUNICATION_FAULT_RAISED,
    INITIALISED,
    POWERMETER,
    PUBLIC_KEY_OCMF,
    REINITIALISING,
    TRANSACTION_ENDED,
    WARNING,
    DriverEvent,
    EventBus,
    Predicate,
    Subscription,
)
from iemdcr_twin.driver.types import (
    Powermeter,
    SignedMeterValue,
    TransactionEnded,
    TransactionReq,
    TransactionRequestStatus,
    TransactionStartResponse,
    TransactionStopResponse,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_INTERVAL_S = 1.0
IDLE_WAIT_S = 0.25  # after E: lets the meter settle into idle / finish the signature
SIGNATURE_POLL_S = 0.25  # while GET receipt answers 425 signature_pending (fix 14)
DATETIME_BACKOFF_START_S = 1.0
NOT_INITIALISED = "Init of communication not finished yet."
KNOWN_TRANSACTIONS = 256  # how many start outcomes and delivered records the driver remembers (fix 13)

# What the driver knows about a start (fix 13): B answered 200, or the meter answered every try with a refusal
# (B never began), or a try got no answer (B may have begun).
BEGAN = "began"
NEVER_BEGAN = "never began"
MAYBE_BEGAN = "maybe began"


class SignatureTimeout(MeterError):
    """The meter kept answering 425 signature_pending past `signature_timeout_ms` (fix 14)."""


class IemDcrDriver:
    """One IEM-DCR behind the EVerest powermeter interface; the port of the C++ module's `main/powermeterImpl.cpp`.

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
        # Fix 13: what this driver knows about transactions, so a stop never gets another transaction's record.
        self._running_tid: str | None = None  # the transaction this driver began and has not seen end
        self._last_start_tid: str | None = None
        self._start_outcomes: OrderedDict[str, str] = OrderedDict()  # transaction id -> BEGAN, NEVER_BEGAN...
        self._start_errors: dict[str, str] = {}  # transaction id -> why its start failed
        self._delivered: OrderedDict[tuple[str, str], str] = OrderedDict()  # (PK, PG) -> transaction id

    # ----- state, read-only for callers -------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        """Whether init has finished and no failure has asked for it again since."""
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
        """Whether the EVerest error `powermeter/CommunicationFault` is raised and not yet cleared."""
        return self._fault_active

    @property
    def public_key_ocmf(self) -> str:
        """The interface's `public_key_ocmf` var: the meter's PK (hex DER) from GET publickey, "" before init."""
        return self._meter.public_key

    @property
    def running(self) -> bool:
        """Whether the background task (init, then the live loop) runs."""
        return self._task is not None and not self._task.done()

    # ----- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background task (init, then the live loop); does nothing if it runs."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=f"iemdcr-driver {self.config.base_url}")

    async def stop(self) -> None:
        """Cancel the background task and close the HTTP session; a transaction on the meter is left as it is."""
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
        """EventBus.wait_for on this driver's events; ValueError for an unknown event name."""
        return await self.events.wait_for(name, predicate, include_past=include_past)

    def subscribe(self, names: Iterable[str] | None = None) -> Subscription:
        """EventBus.subscribe on this driver's events (all of them when `names` is None)."""
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
        """One init attempt; returns how long to sleep before the next pass.

        Fix 17: when GET gw shows the configured CT and CI, the meter kept them (the driver restarted, or the
        meter lost only its clock): write only the time, and only while no transaction runs. Otherwise POST gw;
        a refusal is a warning naming both values, since the meter keeps its own until it restarts.
        """
        self._time_written = False
        try:
            gw = await self._meter.get_gw()
            if gw.get("CT") == self.config.CT and gw.get("CI") == self.config.CI:
                await self._write_time_if_idle()
            else:
                try:
                    await self._meter.post_gw()
                    self._time_written = True
                    self._datetime_synced()
                except UnexpectedStatus as error:
                    self._warn(_gw_refused(error, gw, self.config.CT, self.config.CI))
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

    async def _write_time_if_idle(self) -> None:
        """POST datetime unless a transaction runs (checked with a poll first); a refusal is a warning."""
        if (await self._meter.get_metervalue()).transaction_active:
            log.info("gw already set and a transaction runs: the time is written once it has ended")
            self._next_datetime_sync = float("-inf")
            return
        try:
            await self._meter.post_datetime()
        except UnexpectedStatus as error:
            self._warn(f"the meter time could not be written at initialisation ({error})")
            self._datetime_failed(self.clock.now(), error)
            return
        self._time_written = True
        self._datetime_synced()

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
        if not reading.transaction_active:
            self._running_tid = None
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
            self._datetime_failed(now, error)
            return
        self._time_written = True
        self._datetime_synced()
        log.info("meter datetime resynchronised")

    @property
    def _resync_interval_s(self) -> float:
        return self.config.datetime_resync_interval * 3600.0

    def _datetime_failed(self, now: float, error: MeterError) -> None:
        """Back off after a failed POST datetime: 1 s, 2 s, 4 s ... up to the resync interval (fix 7)."""
        self._next_datetime_sync = now + self._datetime_backoff_s
        log.warning("datetime write failed: %s; next try in %g s", error, self._datetime_backoff_s)
        self._datetime_backoff_s = min(self._datetime_backoff_s * 2, self._resync_interval_s)

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
        """Close any open transaction (publishing its record), write the user block, begin (driver.md §2).

        EVerest's start_transaction, with fix 16: a transaction ended here has its record fetched and published
        as a `transaction_ended` event. If that record cannot be read, no new transaction begins, so the
        meter's last record stays that one and a stop still returns it. The outcome of every start is
        remembered for fix 13 (a stop of a transaction that never began gets no record). Meter failures come
        back as the response's status and error, never raised.
        """
        self._last_start_tid = req.transaction_id
        outcome = MAYBE_BEGAN  # if the start is cancelled or fails in a way nobody foresaw
        response = TransactionStartResponse(TransactionRequestStatus.UNEXPECTED_ERROR, "start did not finish")
        try:
            response, outcome = await self._start(req)
        finally:
            self._remember_start(req.transaction_id, outcome, response.error)
        return response

    async def _start(self, req: TransactionReq) -> tuple[TransactionStartResponse, str]:
        if req.evse_id and req.evse_id != self.config.CI:
            return _start_error(
                f"config: CI does not match evse_id ({req.evse_id!r} != {self.config.CI!r}). This is not allowed.",
                TransactionRequestStatus.NOT_SUPPORTED,
            ), NEVER_BEGAN
        if not self._initialised:
            return _start_error(f"{NOT_INITIALISED} Please try again later."), NEVER_BEGAN
        async with self._lock:  # released on every return: fix 1
            if not self._initialised:
                return _start_error(f"{NOT_INITIALISED} Please try again later."), NEVER_BEGAN
            if self._status_code != HEALTHY_XC:
                # Fix 6: UNEXPECTED_ERROR (what the C++ code does), not NOT_SUPPORTED (what its docs say).
                return _start_error(f"IEM-DCR is in error state. XC: {self._status_code}"), NEVER_BEGAN
            no_answer = False  # a B try that got no answer may have begun a transaction

            async def begin() -> None:
                nonlocal no_answer
                try:
                    await self._meter.post_receipt("B")
                except TransportError:
                    no_answer = True
                    raise

            try:
                if await self._meter.gw_is_empty():
                    self._lose_init("GET gw shows CT empty: the meter restarted and lost its configuration")
                    return _start_error(
                        "Init seems to be missing (CT is empty on the meter). Re-init triggered. "
                        "Please try again later."
                    ), NEVER_BEGAN
                ended = await self._end_before_begin()
                await self.clock.sleep(IDLE_WAIT_S)
                if ended is not None:
                    refusal = await self._publish_ended(*ended)
                    if refusal is not None:
                        return _start_error(refusal), NEVER_BEGAN
                await self._retry(lambda: self._meter.post_user(req), "POST user")
                await self._retry(begin, "POST receipt B")
            except MeterError as error:
                outcome = MAYBE_BEGAN if no_answer else NEVER_BEGAN
                return _start_error(f"start_transaction failed: {error}"), outcome  # fix 4: the detailed reason
            self._transaction_active = True
            self._running_tid = req.transaction_id
            return TransactionStartResponse(status=TransactionRequestStatus.OK), BEGAN

    async def _end_before_begin(self) -> tuple[str, float] | None:
        """POST receipt E before B; returns (owner, when) if it ended a transaction, None if none ran."""
        owner = self._running_tid or ""
        if self._transaction_active:
            await self._retry(lambda: self._meter.post_receipt("E"), "POST receipt E")
        else:
            try:  # defensive: close a transaction the last poll may not have seen
                await self._meter.post_receipt("E")
            except MeterError as error:
                log.debug("defensive POST receipt E refused (normal when idle): %s", error)
                return None
        self._transaction_active = False
        self._running_tid = None
        return owner, self.clock.now()

    async def _publish_ended(self, owner: str, ended_at: float) -> str | None:
        """Fetch the record of a transaction a start ended and publish it (fix 16); the reason if that failed."""
        try:
            record = await self._read_receipt(ended_at)
        except MeterError as error:
            return (
                f"start_transaction: the running transaction was ended but its record could not be read ({error}). "
                "No new transaction was begun, so a stop still returns that record."
            )
        self._note_delivered(record, owner or "(published in a transaction_ended event)")
        self.events.emit(TRANSACTION_ENDED, TransactionEnded(transaction_id=owner, signed_meter_value=record))
        return None

    async def stop_transaction(self, transaction_id: str = "") -> TransactionStopResponse:
        """End the running transaction and return its record, or return the last record when idle.

        The last poll's XT decides the path (driver.md §2), made robust to a stale poll (fix 9):
        - believed idle: ONE POST receipt E (a transaction the poll missed is ended and its receipt
          returned); if it is refused, the last finished record (v1, then v2);
        - believed running: E with retries; when they are exhausted, poll metervalue once: XT false means
          the transaction ended meanwhile, so return the last record, else UNEXPECTED_ERROR.
        After E the receipt is asked for while the meter answers 425, up to `signature_timeout_ms` (fix 14).

        transaction_id (fix 13; the C++ module ignores it) is used only to refuse records that belong to
        another transaction: a stop of a transaction whose start this driver saw refused, a stop naming another
        transaction than the one this driver began, or a record already delivered for another transaction
        gets UNEXPECTED_ERROR. "" stands for the transaction this driver began last. A driver that knows
        nothing (just restarted) returns the last record, as documented. Meter failures come back as the
        response's status and error, never raised.
        """
        if not self._initialised:  # fix 10: answer at once, never wait behind an init in progress
            return _stop_error(NOT_INITIALISED)
        async with self._lock:
            if not self._initialised:
                return _stop_error(NOT_INITIALISED)
            tid = self._stop_owner(transaction_id)
            refusal = self._foreign_stop(tid)
            if refusal is not None:
                return _stop_error(refusal)
            if self._transaction_active:
                try:
                    await self._retry(lambda: self._meter.post_receipt("E"), "POST receipt E")
                except MeterError as error:
                    return await self._after_failed_end(error, tid)
            else:
                try:  # one try: closes a transaction the last poll may not have seen
                    await self._meter.post_receipt("E")
                except MeterError as error:
                    log.debug("POST receipt E refused while idle (normal): %s", error)
                    return await self._last_record(tid)
            ended_at = self.clock.now()
            self._transaction_active = False
            self._running_tid = None
            await self.clock.sleep(IDLE_WAIT_S)
            try:
                record = await self._read_receipt(ended_at)
            except MeterError as error:
                return _stop_error(f"stop_transaction: transaction ended but reading its record failed: {error}")
            return self._deliver(record, tid)

    def _stop_owner(self, transaction_id: str) -> str:
        """The transaction a stop is for: its id, or for "" the one this driver began ("" when unknown)."""
        if transaction_id:
            return transaction_id
        if self._transaction_active:
            return self._running_tid or ""
        return self._last_start_tid or ""

    def _foreign_stop(self, tid: str) -> str | None:
        """Why a stop of `tid` must get no record before anything is sent (fix 13), or None."""
        if not tid:
            return None
        if self._start_outcomes.get(tid) == NEVER_BEGAN:
            why = self._start_errors.get(tid) or "it was refused"
            return (
                f"stop_transaction: transaction {tid!r} never began on the meter (its start failed: {why}); "
                "no signed record belongs to it"
            )
        if self._transaction_active and self._running_tid and self._running_tid != tid:
            return (
                f"stop_transaction: transaction {tid!r} is not the one running on the meter "
                f"({self._running_tid!r}); nothing was ended"
            )
        return None

    async def _after_failed_end(self, error: MeterError, tid: str) -> TransactionStopResponse:
        """E exhausted its retries although a transaction was believed running: ask the meter once more."""
        try:
            reading = await self._meter.get_metervalue()
        except MeterError as poll_error:
            return _stop_error(f"stop_transaction failed: {error}; polling metervalue then failed too: {poll_error}")
        self._apply_reading(reading)
        if reading.transaction_active:
            return _stop_error(f"stop_transaction failed: {error}")
        log.info("POST receipt E failed but the meter shows no transaction: returning the last record")
        return await self._last_record(tid)

    async def _last_record(self, tid: str) -> TransactionStopResponse:
        try:
            record: SignedMeterValue = await self._meter.get_transaction()
        except MeterError as error:
            return _stop_error(f"{error}. Maybe no transaction to return?")
        return self._deliver(record, tid)

    def _deliver(self, record: SignedMeterValue, tid: str) -> TransactionStopResponse:
        """OK with `record`, unless it was already delivered for another transaction (fix 13)."""
        identity = record_identity(record)
        owner = self._delivered.get(identity)
        if tid and owner is not None and owner != tid:
            return _stop_error(
                f"stop_transaction: the meter's last record ({identity[1]}) was already delivered for transaction "
                f"{owner!r}; it does not belong to transaction {tid!r}"
            )
        if tid:
            self._note_delivered(record, tid)
        return TransactionStopResponse(status=TransactionRequestStatus.OK, signed_meter_value=record)

    def _note_delivered(self, record: SignedMeterValue, owner: str) -> None:
        identity = record_identity(record)
        self._delivered[identity] = owner
        self._delivered.move_to_end(identity)
        while len(self._delivered) > KNOWN_TRANSACTIONS:
            self._delivered.popitem(last=False)

    def _remember_start(self, tid: str, outcome: str, error: str) -> None:
        self._start_outcomes[tid] = outcome
        self._start_outcomes.move_to_end(tid)
        if outcome == NEVER_BEGAN:
            self._start_errors[tid] = error
        else:
            self._start_errors.pop(tid, None)
        while len(self._start_outcomes) > KNOWN_TRANSACTIONS:
            old, _ = self._start_outcomes.popitem(last=False)
            self._start_errors.pop(old, None)

    async def _read_receipt(self, ended_at: float) -> SignedMeterValue:
        """GET receipt after a successful E.

        While the meter answers 425 signature_pending, ask again every 250 ms until `signature_timeout_ms`
        after the E (fix 14; these answers use up no retries). Other failures follow the retry policy.
        """
        deadline = ended_at + self.config.signature_timeout_ms / 1000
        failures = 0
        while True:
            try:
                return await self._meter.get_receipt()
            except UnexpectedStatus as error:
                if error.status == 425:
                    if self.clock.now() >= deadline - 1e-6:
                        raise SignatureTimeout(
                            f"the meter was still signing the record after {self.config.signature_timeout_ms} ms "
                            f"(signature_timeout_ms; last answer: {error}). The transaction has ended and its "
                            "record stays on the meter: a later stop returns it"
                        ) from None
                    await self.clock.sleep(SIGNATURE_POLL_S)
                    continue
                failure: MeterError = error
            except MeterError as error:
                failure = error
            if not failure.retryable or failures >= self.config.resilience_transaction_request_retries:
                raise failure
            failures += 1
            log.warning("GET receipt failed (attempt %d): %s", failures, failure)
            await self.clock.sleep(self.config.resilience_transaction_request_retry_delay / 1000)

    async def _retry(self, action: Callable[[], Awaitable[T]], what: str) -> T:
        """The C++ call_with_retry with the transaction retry settings."""
        return await call_with_retry(
            action,
            self.config.resilience_transaction_request_retries,
            self.config.resilience_transaction_request_retry_delay,
            self.clock,
            what,
        )


def _gw_refused(error: UnexpectedStatus, gw: dict[str, object], ct: str, ci: str) -> str:
    """The warning for a refused POST gw, naming the values on the meter and the configured ones (fix 17)."""
    on_meter = f"CT={gw.get('CT')!r} CI={gw.get('CI')!r}"
    if error.status == 428:
        return (
            f"gw already set this power cycle: the meter keeps {on_meter} until it restarts, "
            f"not the configured CT={ct!r} CI={ci!r} ({error})"
        )
    return f"POST gw refused: the meter has {on_meter}, the configured CT={ct!r} CI={ci!r} were not written ({error})"


def _start_error(
    message: str, status: TransactionRequestStatus = TransactionRequestStatus.UNEXPECTED_ERROR
) -> TransactionStartResponse:
    """A failed start; its error text is remembered for a later stop of the same transaction (fix 13)."""
    log.error("start_transaction aborted: %s", message)
    return TransactionStartResponse(status=status, error=message)


def _stop_error(message: str) -> TransactionStopResponse:
    log.error("stop_transaction aborted: %s", message)
    return TransactionStopResponse(status=TransactionRequestStatus.UNEXPECTED_ERROR, error=message)
