"""The meter protocol: one method per exchange with the IEM-DCR, parsing and checking each answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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


def format_meter_time(config: DriverConfig, now: float) -> str:
    """TM as the C++ driver sends it: local time at the configured offset, `YYYY-MM-DDTHH:MM:SS,000±HHMM`.

    With timezone_handle_DST one hour is added while the host is in daylight saving time; the offset text
    stays the configured one, exactly as in the C++ module.
    """
    local = now + config.timezone_offset_s
    if config.timezone_handle_DST and config.dst_probe(now):
        local += 3600
    stamp = datetime.fromtimestamp(int(local), tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S,000") + config.timezone


def split_time_status(tm: str) -> tuple[str, str]:
    """Split `...,000+0100 I` into the timestamp and the status letter."""
    head, sep, letter = tm.rpartition(" ")
    if sep and len(letter) == 1 and letter.isalpha():
        return head, letter
    return tm, ""


def kwh_to_wh(value: Any, endpoint: str, where: str) -> float:
    """Parse a kWh register string (the whole string: fix 3) into Wh."""
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
    """1 + retries attempts, sleeping the delay after each failure; the last error propagates."""
    last: MeterError | None = None
    for attempt in range(1 + retries):
        try:
            return await action()
        except MeterError as error:
            last = error
            log.warning("%s failed (attempt %d of %d): %s", what, attempt + 1, 1 + retries, error)
            await clock.sleep(delay_ms / 1000)
    assert last is not None
    raise last


class MeterController:
    """Requests and answers of the meter API (meter-api.md); no policy, no state beyond the public key."""

    def __init__(self, client: MeterHttpClient, config: DriverConfig) -> None:
        self._client = client
        self._config = config
        self.public_key: str = ""

    async def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> HttpResponse:
        response = await self._client.request(method, endpoint, body)
        if response.status != 200:
            raise UnexpectedStatus(method, endpoint, response.status, response.text)
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
        return format_meter_time(self._config, self._config.clock.now())

    async def get_gw(self) -> dict[str, Any]:
        return await self._call_json("GET", V1 + "gw")

    async def gw_is_empty(self) -> bool:
        """True when CT is not set: empty string or null both count (fix 2)."""
        ct = (await self.get_gw()).get("CT")
        return ct is None or ct == ""

    async def post_gw(self) -> None:
        body = {"CT": self._config.CT, "CI": self._config.CI, "TM": self.now_tm()}
        await self._call("POST", V1 + "gw", body)

    async def post_tariff(self, tariff_text: str) -> None:
        await self._call("POST", V1 + "tariff", {"TT": tariff_text})

    async def post_datetime(self) -> None:
        await self._call("POST", V1 + "datetime", {"TM": self.now_tm()})

    async def get_publickey(self) -> str:
        endpoint = V1 + "publickey"
        data = await self._call_json("GET", endpoint)
        key = data.get("PK")
        if not isinstance(key, str) or not key:
            raise UnexpectedBody(endpoint, "PK missing or not a non-empty string", json.dumps(data))
        self.public_key = key
        return key

    async def get_metervalue(self) -> MeterReading:
        endpoint = V1 + "metervalue"
        data = await self._call_json("GET", endpoint)
        return parse_metervalue(data, endpoint)

    async def post_user(self, req: TransactionReq) -> None:
        """POST user: ID is identification_data when given and non-empty, else the transaction id."""
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
        await self._call("POST", V1 + "receipt", {"TX": tx})

    async def get_receipt(self) -> SignedMeterValue:
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
    """Map a metervalue answer to a Powermeter; any missing key or wrong type is an UnexpectedBody."""
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
