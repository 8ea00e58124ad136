"""Both OpenAPI documents, as the twin serves them, state what the server does (issue 12 item 9): schemathesis
generates requests from each document and checks every answer against it (no 5xx, a documented status, the
documented content type, a body that fits the schema, the documented headers).

A derandomized, bounded run per document (``EXAMPLES`` examples) against a fresh twin each, served over real
HTTP by a server on its own thread (schemathesis calls with ``requests``, which blocks). Left out: the event
stream (``GET /api/events``), which never ends by design.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.fleet import Twin
from tests.support.twin import S1, S2, new_twin

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test extra (pip install -e '.[test]')")
from schemathesis import checks  # noqa: E402  (after the importorskip above)

EXAMPLES = 300
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


class ServedApp:
    """An aiohttp app served on 127.0.0.1 from an event loop on its own thread, until ``close``."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None
        self.port = self._call(self._start(make_app))

    def _call(self, coroutine: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)  # type: ignore[arg-type]

    async def _start(self, make_app: Callable[[], web.Application]) -> int:
        self.runner = web.AppRunner(make_app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(self.runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.runner is not None:
            self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[tuple[Twin, ServedApp]]:
    """A fresh two-meter twin behind its control app, served over HTTP."""
    twin = new_twin(2)
    app = ServedApp(lambda: create_control_app(twin))
    try:
        yield twin, app
    finally:
        app.close()


def run_schemathesis(document: dict[str, Any], serials: list[str] | None = None) -> None:
    """Generate ``EXAMPLES`` requests from the document, send them to its first server, and check each answer;
    raise on the first failure. With ``serials``, most requests name one of these meters (a generated serial
    alone would almost never name a meter of the twin, and only the 404 would be tried)."""
    base_url = document["servers"][0]["url"]
    schema = schemathesis.openapi.from_dict(document).exclude(path="/api/events")
    strategy = st.one_of(
        schema.as_strategy(), *(schema.as_strategy(path_parameters={"serial": serial}) for serial in serials or ())
    )
    with requests.Session() as session:

        @SETTINGS
        @given(case=strategy)
        def conforms(case: Any) -> None:
            response = case.call(base_url=base_url, session=session, timeout=30)
            case.validate_response(response, checks=CHECKS)

        conforms()


def test_the_control_api_does_what_its_document_says(served: tuple[Twin, ServedApp]) -> None:
    _, app = served
    document = requests.get(app.url + "/api/openapi.json", timeout=30).json()
    assert document["servers"] == [{"url": app.url, "description": "the control API"}]
    run_schemathesis(document, [S1, S2])


def test_the_meter_api_does_what_its_document_says(served: tuple[Twin, ServedApp]) -> None:
    twin, app = served
    document = requests.get(app.url + "/api/openapi-meter.json", timeout=30).json()
    assert [server["url"] for server in document["servers"]] == [slot.url for slot in twin.slots.values()]
    run_schemathesis(document)  # the first server: the first meter
