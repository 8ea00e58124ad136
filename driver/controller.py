"""The meter protocol: one method per exchange with the IEM-DCR, parsing and checking each answer.

The port of the C++ `main/isabellenhuetteIemDcrController.cpp`; the endpoints are meter-api.md §2.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from iemdcr_twin.driver.client import HttpResponse, MeterHttpClient
from iemdcr_twin.driver.clock import Clock
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.errors import MeterError, UnexpectedBody, UnexpectedStatus
from iemdcr_twin.driver.types import (
    Current,
    Energy,
    OCMFIdentificationLevel,
    OCMFUserIdentificationStatus,
    Power,
    Powermeter,
    SignedMeterValue,
    TransactionReq,
    Voltage,
)

log = logging.getLogger(__name__)

V1 = "/counter/v1/ocmf/"
V2 = "/counter/v2/ocmf/"
HEALTHY_XC = "0x0000, 0x00000000, 0x00, 0x00"


@dataclass(frozen=True)
class MeterReading:
    """What one GET metervalue tells the driver: the values to publish and the state it must remember."""

    powermeter: Powermeter
    status_code: str  # XC
    transaction_active: bool  # XT
    time_status: str  # the OCMF time-status letter of TM ("" when the meter sent none)


def eu_summer_time(now: float) -> bool:
    """Whether the EU's summer time is in force at `now` (epoch seconds).

    Directive 2000/84/EC: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of
    October, the same instant in every EU zone.
    """
    instant = datetime.fromtimestamp(now, tz=UTC)
    begin = datetime.combine(_last_sunday(instant.year, 3), time(1), tzinfo=UTC)
    end = datetime.combine(_last_sunday(instant.year, 10), time(1), tzinfo=UTC)
    return begin <= instant < end


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)  # March and October both have 31 days
    return last - timedelta(days=(last.weekday() - 6) % 7)


def meter_zone_at(config: DriverConfig, now: float) -> tzinfo:
    """The zone whose offset names the instant `now` on the meter (driver.md §2, fix 12).

    An IANA zone (`Europe/Berlin`) follows its own rules. A `±HHMM` offset with timezone_handle_DST gains one
    hour during EU summer time; without DST handling it stays fixed. The host's time zone plays no part.
    """
    zone = config.zone
    if zone is not None:
        return zone
    offset_s = config.timezone_offset_s
    if config.timezone_handle_DST and eu_summer_time(now):
        offset_s += 3600
    return timezone(timedelta(seconds=offset_s))


def format_meter_time(config: DriverConfig, now: float) -> str:
    """TM for POST gw and POST datetime: `YYYY-MM-DDTHH:MM:SS,000±HHMM` naming the true instant `now`.

    Built from one timezone-aware instant: the local wall time and the offset both come from the zone in force
    at `now` (meter_zone_at), so `2026-07-01T14:00:00,000+0200` is 12:00 UTC. The C++ module added one hour
    while the host was in DST but kept the `+0100` text, naming an instant one hour off (fix 12).
    """
    local = datetime.fromtimestamp(math.floor(now), tz=UTC).astimezone(meter_zone_at(config, now))
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%dT%H:%M:%S},000{sign}{hours:02d}{mins:02d}"


def record_identity(record: SignedMeterValue) -> tuple[str, str]:
    """(public key, PG) of a signed record: what makes it unique on a meter (fix 13).

    A record whose payload cannot be read is identified by a digest of its bytes instead of its PG.
    """
    pagination: Any = None
    parts = record.signed_meter_data.split("|")
    if len(parts) == 3:
        with contextlib.suppress(ValueError):
            payload = json.loads(parts[1])
            pagination = payload.get("PG") if isinstance(payload, dict) else None
    if not isinstance(pagination, str) or not pagination:
        pagination = "sha256:" + hashlib.sha256(record.signed_meter_data.encode()).hexdigest()
    return record.public_key or "", pagination


def split_time_status(tm: str) -> tuple[str, str]:
    """Split TM `...,000+0100 I` into (timestamp, OCMF time-status letter); the letter is "" when absent."""
    head, sep, letter = tm.rpartition(" ")
    if sep and len(letter) == 1 and letter.isalpha():
        return head, letter
    return tm, ""


def kwh_to_wh(value: Any, endpoint: str, where: str) -> float:
    """A register's WV (kWh as a decimal string, e.g. "1.040") in Wh; the whole string is parsed (fix 3).

    Raises UnexpectedBody naming `where` (e.g. `RD[2].WV`) for a non-string, non-number or non-finite value.
    """
    if not isinstance(value, str):
        raise UnexpectedBody(endpoint, f"{where} must be a string, got {type(value).__name__}")
    try:
        if not value.isascii():  # Decimal() takes any Unicode digit
            raise InvalidOperation(value)
        kwh = Decimal(value.strip())
    except InvalidOperation:
        raise UnexpectedBody(endpoint, f"{where} {value!r} is not a number") from None
    if not kwh.is_finite():
        raise UnexpectedBody(endpoint, f"{where} {value!r} is not a finite number")
    return float(kwh * 1000)


T = TypeVar("T")


async def call_with_retry(
    action: Callable[[], Awaitable[T]], retries: int, delay_ms: int, clock: Clock, what: str
) -> T:
    """1 + retries attempts of `action`, sleeping `delay_ms` on `clock` after each failure; the last error propagates.

    Only failures that may go away are retried (fix 15): transport failures, garbled answers, 5xx, 425 and
    428. Any other status (a 400 naming a field, a 404) fails at once.
    """
    last: MeterError | None = None
    for attempt in range(1 + retries):
        try:
            return await action()
        except MeterError as error:
            if not error.retryable:
                log.warning("%s refused: %s", what, error)
                raise
            last = error
            log.warning("%s failed (attempt %d of %d): %s", what, attempt + 1, 1 + retries, error)
            await clock.sleep(delay_ms / 1000)
    assert last is not None
    raise last


class MeterController:
    """Requests and answers of the meter API (meter-api.md §2); no policy, no state beyond the public key.

    Every method raises TransportError (no answer), UnexpectedStatus (not 200) or UnexpectedBody (a 200 whose
    body is not what the node promises).
    """

    def __init__(self, client: MeterHttpClient, config: DriverConfig) -> None:
        self._client = client
        self._config = config
        self.public_key: str = ""

    async def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> HttpResponse:
        response = await self._client.request(method, endpoint, body)
        if response.status != 200:
            raise UnexpectedStatus(method, endpoint, response.status, response.text, body or ())
        return response

    async def _call_json(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self._call(method, endpoint, body)
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            raise UnexpectedBody(endpoint, "not JSON", response.text) from None
        if not isinstance(data, dict):
            raise UnexpectedBody(endpoint, "not a JSON object", response.text)
        return data

    def now_tm(self) -> str:
        """TM for the meter at the config clock's now: `YYYY-MM-DDTHH:MM:SS,000±HHMM` (format_meter_time)."""
        return format_meter_time(self._config, self._config.clock.now())

    async def get_gw(self) -> dict[str, Any]:
        """GET gw: the JSON object as sent (CT, CI...); UnexpectedBody when it is not a JSON object."""
        return await self._call_json("GET", V1 + "gw")

    async def gw_is_empty(self) -> bool:
        """True when CT is not set: empty string or null both count (fix 2)."""
        ct = (await self.get_gw()).get("CT")
        return ct is None or ct == ""

    async def post_gw(self) -> None:
        """POST gw {CT, CI, TM} from the config; the meter takes it once per power cycle (meter-api.md §3.2)."""
        body = {"CT": self._config.CT, "CI": self._config.CI, "TM": self.now_tm()}
        await self._call("POST", V1 + "gw", body)

    async def post_tariff(self, tariff_text: str) -> None:
        """POST tariff {TT}: the tariff text the meter signs into the next records."""
        await self._call("POST", V1 + "tariff", {"TT": tariff_text})

    async def post_datetime(self) -> None:
        """POST datetime {TM}: set the meter clock to the config clock's now (meter-api.md §3.3)."""
        await self._call("POST", V1 + "datetime", {"TM": self.now_tm()})

    async def get_publickey(self) -> str:
        """GET publickey: PK (hex DER), also kept in `public_key`; UnexpectedBody when PK is missing or empty."""
        endpoint = V1 + "publickey"
        data = await self._call_json("GET", endpoint)
        key = data.get("PK")
        if not isinstance(key, str) or not key:
            raise UnexpectedBody(endpoint, "PK missing or not a non-empty string", json.dumps(data))
        self.public_key = key
        return key

    async def get_metervalue(self) -> MeterReading:
        """GET metervalue as a MeterReading (parse_metervalue)."""
        endpoint = V1 + "metervalue"
        data = await self._call_json("GET", endpoint)
        return parse_metervalue(data, endpoint)

    async def post_user(self, req: TransactionReq) -> None:
        """POST user {IS, IL, IF, IT, ID, US, TT} from `req` (driver.md §2; IL UNKNOWN when unset).

        ID is identification_data when given and non-empty, else the transaction id; TT only when tariff_text is set.
        """
        body: dict[str, Any] = {
            "IS": req.identification_status == OCMFUserIdentificationStatus.ASSIGNED,
            "IL": (req.identification_level or OCMFIdentificationLevel.UNKNOWN).value,
            "IF": [flag.value for flag in req.identification_flags],
            "IT": req.identification_type.value,
            "ID": req.identification_data or req.transaction_id,
            "US": self._config.US,
        }
        if req.tariff_text:
            body["TT"] = req.tariff_text
        await self._call("POST", V1 + "user", body)

    async def post_receipt(self, tx: str) -> None:
        """POST receipt {TX}: "B" begins a transaction, "E" ends it (meter-api.md §3.6)."""
        await self._call("POST", V1 + "receipt", {"TX": tx})

    async def get_receipt(self) -> SignedMeterValue:
        """GET receipt: the record of the last transaction ended since power-up, byte for byte (425 while signing)."""
        return await self._signed_record(V1 + "receipt")

    async def get_transaction(self) -> SignedMeterValue:
        """The last finished transaction: v1 first, the newer v2 node when v1 does not answer 200."""
        try:
            return await self._signed_record(V1 + "transaction")
        except UnexpectedStatus as error:
            log.info("v1 transaction node failed (%s); trying v2", error)
            return await self._signed_record(V2 + "transaction")

    async def _signed_record(self, endpoint: str) -> SignedMeterValue:
        response = await self._call("GET", endpoint)
        try:
            record = response.body.decode("utf-8")
        except UnicodeDecodeError:
            raise UnexpectedBody(endpoint, "record is not UTF-8 text") from None
        if not record:
            raise UnexpectedBody(endpoint, "empty record")
        return SignedMeterValue(
            signed_meter_data=record,
            signing_method="",
            encoding_method="OCMF",
            public_key=self.public_key,
        )


def _number(data: dict[str, Any], key: str, endpoint: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnexpectedBody(endpoint, f"{key} missing or not a number ({value!r})")
    return float(value)


def _string(data: dict[str, Any], key: str, endpoint: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise UnexpectedBody(endpoint, f"{key} missing or not a string ({value!r})")
    return value


def parse_metervalue(data: dict[str, Any], endpoint: str = V1 + "metervalue") -> MeterReading:
    """Map a metervalue answer (meter-api.md §4) to a MeterReading; driver.md §2 gives the mapping.

    I → current_A.DC (A), U2 → voltage_V.DC (V), P → power_W.total (W), RD[2]/RD[3].WV (kWh) → energy_Wh_import /
    energy_Wh_export (Wh), MS → meter_id, TM → timestamp and time status, XC and XT as they are. Any missing key
    or wrong type raises UnexpectedBody naming it.
    """
    transaction_active = data.get("XT")
    if not isinstance(transaction_active, bool):
        raise UnexpectedBody(endpoint, f"XT missing or not a boolean ({transaction_active!r})")
    registers = data.get("RD")
    if not isinstance(registers, list) or len(registers) < 4:
        count = len(registers) if isinstance(registers, list) else "no"
        raise UnexpectedBody(endpoint, f"RD must be a list of 4 registers, got {count} entries")
    energies = []
    for index in (2, 3):
        register = registers[index]
        if not isinstance(register, dict):
            raise UnexpectedBody(endpoint, f"RD[{index}] is not an object")
        energies.append(kwh_to_wh(register.get("WV"), endpoint, f"RD[{index}].WV"))
    timestamp, time_status = split_time_status(_string(data, "TM", endpoint))
    powermeter = Powermeter(
        timestamp=timestamp,
        meter_id=_string(data, "MS", endpoint),
        energy_Wh_import=Energy(total=energies[0]),
        energy_Wh_export=Energy(total=energies[1]),
        power_W=Power(total=_number(data, "P", endpoint)),
        voltage_V=Voltage(DC=_number(data, "U2", endpoint)),
        current_A=Current(DC=_number(data, "I", endpoint)),
    )
    return MeterReading(
        powermeter=powermeter,
        status_code=_string(data, "XC", endpoint),
        transaction_active=transaction_active,
        time_status=time_status,
    )
