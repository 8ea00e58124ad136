"""The bundled driver for tests: its settings on the test clock, a charge request, waits with a hang guard.

The driver never imports the simulator; tests may use both. Its requests hold the shared clock while they are on
the wire (``tests.support.clock.hold_meter_requests``), so auto-jump never moves time inside an exchange.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from iemdcr_twin.driver.clock import Clock
from iemdcr_twin.driver.config import DriverConfig
from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import DriverEvent
from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    TransactionReq,
)
from tests.support.http import GUARD_S

MakeDriver = Callable[..., IemDcrDriver]  # the driver tests' make_driver fixture: (url, **settings) -> driver
CI = "DE*ISA*E0001"  # an EVSEID, so records pass pyocmf's Eichrecht checks with CT EVSEID
RFID = "04A1B2C3"  # an ISO14443 UID: 8 hex characters


def make_req(**overrides: Any) -> TransactionReq:
    """A verified RFID charge at the EVSE ``CI``; ``overrides`` change single fields."""
    fields: dict[str, Any] = {
        "evse_id": CI,
        "transaction_id": "tx-1",
        "identification_status": OCMFUserIdentificationStatus.ASSIGNED,
        "identification_type": OCMFIdentificationType.ISO14443,
        "identification_flags": [OCMFIdentificationFlags.RFID_PLAIN],
        "identification_level": OCMFIdentificationLevel.VERIFIED,
        "identification_data": RFID,
    }
    fields.update(overrides)
    return TransactionReq(**fields)


def new_driver(url: str, clock: Clock, **settings: Any) -> IemDcrDriver:
    """A driver (not started) for the meter at ``url`` on ``clock``: CI ``CI``, a fixed +0100 offset, 2 s timeout;
    ``settings`` override any ``DriverConfig`` field."""
    settings.setdefault("CI", CI)
    settings.setdefault("timezone_handle_DST", False)
    settings.setdefault("request_timeout_s", 2.0)
    return IemDcrDriver(DriverConfig.from_url(url, clock=clock, **settings))


async def wait(
    drv: IemDcrDriver, name: str, predicate: Callable[[DriverEvent], bool] | None = None, *, include_past: bool = False
) -> DriverEvent:
    """``wait_for`` with a wall-clock guard: the test fails instead of hanging when something is broken."""
    return await asyncio.wait_for(drv.wait_for(name, predicate, include_past=include_past), GUARD_S)


async def started(drv: IemDcrDriver) -> IemDcrDriver:
    """``drv`` started, once it has finished its first initialisation (``wait``'s hang guard)."""
    await drv.start()
    await wait(drv, "initialised")
    return drv


def payload(record: str) -> dict[str, Any]:
    """The payload section of an OCMF record, parsed."""
    result: dict[str, Any] = json.loads(record.split("|")[1])
    return result
