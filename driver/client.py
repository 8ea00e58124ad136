"""Minimal HTTP client for the meter API: one request, one answer, a hard timeout, no hidden retries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from iemdcr_twin.driver.errors import TransportError


@dataclass(frozen=True)
class HttpResponse:
    """One answer of the meter: the HTTP status and the body's bytes as sent (a signed record stays byte exact)."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        """The body as UTF-8, undecodable bytes replaced: for messages, never for a signed record."""
        return self.body.decode("utf-8", errors="replace")


class MeterHttpClient:
    """Talks HTTP/1.1 to one meter at `base_url` (`http://HOST:PORT`); the port of the C++ `main/httpClient.cpp`.

    Like libcurl in the C++ driver, every request uses a new TCP connection (a real meter is a small
    embedded server; keeping idle connections open buys nothing). Every request has an overall timeout
    (fix 5): a meter that accepts and never answers is a transport failure, not a hung driver.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                timeout=self._timeout,
                headers={"Content-Type": "application/json"},
            )
        return self._session

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> HttpResponse:
        """Send `body` as compact JSON to `base_url + path`; any status is returned, never raised.

        Raises TransportError (driver.md fix 5) when no complete answer arrives within `timeout_s` or the
        connection fails.
        """
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self._get_session().request(method, self._base_url + path, data=data) as response:
                payload = await response.read()
                return HttpResponse(response.status, payload)
        except TimeoutError:
            raise TransportError(f"{method} {path}: no answer within {self._timeout.total:g} s (timeout)") from None
        except (aiohttp.ClientError, OSError) as error:
            raise TransportError(f"{method} {path}: {type(error).__name__}: {error}") from None

    async def close(self) -> None:
        """Close the session; a later request opens a new one."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
