"""The bundled driver on a Twin in-process: its HTTP client on the shared virtual clock, and a charge request."""

from __future__ import annotations

from typing import Any

from iemdcr_twin.driver.client import HttpResponse, MeterHttpClient
from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    TransactionReq,
)
from iemdcr_twin.simulator.clock import SimClock

CI = "DE*ISA*E0001"  # an EVSEID, so records pass pyocmf's Eichrecht checks with CT EVSEID
RFID = "04A1B2C3"  # an ISO14443 UID: 8 hex characters


class HeldClient(MeterHttpClient):
    """The driver's HTTP client, holding auto-jump (``SimClock.busy``) while a request is in flight."""

    def __init__(self, base_url: str, timeout_s: float, clock: SimClock) -> None:
        super().__init__(base_url, timeout_s)
        self._clock = clock

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> HttpResponse:
        with self._clock.busy():
            return await super().request(method, path, body)


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
