"""Open files (issue 12.2): the real ``iemdcr-sim serve`` under a low open-file limit and half-open connections.

Each test lowers the child's ``RLIMIT_NOFILE`` before it runs (soft and hard), so the process sees what a
default Linux shell gives it. Nothing here measures speed: the wall-time bounds only stop a hang.
"""

from __future__ import annotations

import asyncio
import resource
import select
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.support.meter import GW, verified_payload
from tests.support.processes import SimFactory, console_script

pytestmark = pytest.mark.e2e  # starts the installed iemdcr-sim / iemdcr-driver

HANG_GUARD_S = 90.0  # generous: the twin gives every port back within a few idle timeouts
IDLE_TIMEOUT = "1"  # seconds; the default is 20, a test waits a short real time instead
SOFT, HARD = 64, 200  # the child starts with soft < hard, as shells often do


def open_file_limit(soft: int, hard: int) -> Callable[[], None]:
    """A ``preexec_fn`` that lowers the child's open-file limit (an unprivileged process may lower both)."""

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return lower


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # a new TCP connection per request, as EVerest's driver does
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True), timeout=aiohttp.ClientTimeout(total=3)
    ) as session:
        yield session


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


# Half-open: connected, then nothing, part of a request line and headers, or all headers and part of a body.
PARTIAL_REQUESTS = (
    b"",
    b"GET /counter/v1/ocmf/metervalue HTTP/1.1\r\nHost: meter\r\n",
    b"POST /counter/v1/ocmf/datetime HTTP/1.1\r\nHost: meter\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"TM":',
)


@contextmanager
def half_open_connections(url: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections to ``url``, each sending one of PARTIAL_REQUESTS and then nothing; closed at exit."""
    target = address(url)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(target)  # completes once the kernel queues it; the twin may never accept it
            sockets.append(sock)
        deadline = time.monotonic() + 5
        pending = list(sockets)
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], pending, [], 0.5)
            for sock in writable:
                pending.remove(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    data = PARTIAL_REQUESTS[sockets.index(sock) % len(PARTIAL_REQUESTS)]
                    if data:
                        sock.send(data)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


async def answered(session: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with session.get(url) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def test_half_open_connections_cannot_starve_the_twin(
    sim_factory: SimFactory, state_dir: Path, session: aiohttp.ClientSession
) -> None:
    sim = sim_factory(
        "--state-dir", str(state_dir), "--idle-timeout", IDLE_TIMEOUT, preexec_fn=open_file_limit(SOFT, HARD)
    )
    limits = Path(f"/proc/{sim.process.pid}/limits")
    if limits.exists():  # the soft limit was raised to the hard one at start-up
        line = next(line for line in limits.read_text().splitlines() if line.startswith("Max open files"))
        assert line.split()[3:5] == [str(HARD), str(HARD)]
    charger = sim.charger(session)
    assert await charger.post("gw", GW)
    assert await charger.post("receipt", {"TX": "B"}) == {"TX": "B", "XT": True}
    public_key = (await charger.get("publickey"))["PK"]

    # more connections to one meter port than the process may hold descriptors
    with half_open_connections(sim.meter.url, 300):
        deadline = time.monotonic() + HANG_GUARD_S
        while await answered(session, sim.control + "/healthz") != 200:
            assert time.monotonic() < deadline, "the control port never answered again"
            await asyncio.sleep(0.2)
        # the attackers' sockets are still open on their side; the twin closed its ends
        assert await answered(session, f"{sim.control}/api/meters/{sim.meter.serial}") == 200
        assert await answered(session, sim.meter.url + "/counter/v1/ocmf/metervalue") == 200
        # the transaction begun before the flood ends and its record is signed and kept
        assert await charger.post("receipt", {"TX": "E"}) == {"TX": "E", "XT": False}
        payload = verified_payload(await charger.text("receipt"), public_key)
        assert payload["PG"] == "T1"

    log = sim.stderr()
    assert "cannot accept connections" in log  # the flood did exhaust the descriptors ...
    assert "Traceback" not in log
    assert len(log.splitlines()) < 30, log[-3000:]  # ... and the log stays a few lines


async def test_a_twin_out_of_descriptors_shuts_down_cleanly_and_quietly(sim_factory: SimFactory) -> None:
    # the default idle timeout (20 s): the flood still holds every descriptor when SIGTERM comes
    sim = sim_factory(preexec_fn=open_file_limit(SOFT, HARD))
    with half_open_connections(sim.meter.url, 300):
        deadline = time.monotonic() + HANG_GUARD_S
        while "cannot accept connections" not in sim.stderr():
            assert time.monotonic() < deadline, "the flood never exhausted the descriptors"
            await asyncio.sleep(0.1)
        # asyncio retries a failed accept after ACCEPT_RETRY_DELAY (1 s), and every retry fails again; after two
        # of those, retries are pending when SIGTERM closes the listeners. This only sets the scene: nothing
        # here depends on how long anything takes.
        await asyncio.sleep(2 * asyncio.constants.ACCEPT_RETRY_DELAY)
        assert sim.signal(signal.SIGTERM) == 0
    log = sim.stderr()
    assert "Traceback" not in log  # asyncio's pending accept retries fail on the closed listeners: held back
    assert len(log.splitlines()) < 30, log[-3000:]


async def test_each_kind_of_half_open_connection_is_closed_after_the_idle_timeout(sim_factory: SimFactory) -> None:
    sim = sim_factory("--idle-timeout", IDLE_TIMEOUT)
    # the meter port: all three kinds; the control port: silent and unfinished headers
    for url, kinds in ((sim.meter.url, 3), (sim.control, 2)):
        with half_open_connections(url, kinds) as sockets:
            for sock, sent in zip(sockets, PARTIAL_REQUESTS, strict=False):
                sock.setblocking(True)
                sock.settimeout(HANG_GUARD_S)
                received = b""
                while chunk := sock.recv(4096):  # b"" when the twin closes the connection
                    received += chunk
                if sent.startswith(b"POST"):  # a body that does not come is answered, then the connection closed
                    assert received.startswith(b"HTTP/1.1 408 "), received
                    assert b'"error":"request_timeout"' in received
                else:
                    assert received == b""


def test_a_fleet_that_does_not_fit_the_open_file_limit_is_refused_with_the_numbers() -> None:
    result = subprocess.run(
        [console_script("iemdcr-sim"), "serve", "--port", "0", "--control-port", "0", "--meters", "100"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=open_file_limit(100, 128),
    )
    assert result.returncode != 0
    assert result.stdout == ""  # no meter was announced
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    # 100 meters × 4 descriptors + 64 = 464 needed; the limit (raised to the hard limit) is 128
    for figure in ("100 meters", "464", "4 per meter", "128"):
        assert figure in message, message


def test_a_fleet_that_fits_after_raising_the_soft_limit_starts(sim_factory: SimFactory) -> None:
    # 30 meters need 184 descriptors: more than the soft limit of 64, less than the hard limit of 200
    sim = sim_factory("--meters", "30", preexec_fn=open_file_limit(SOFT, HARD))
    assert len(sim.meters) == 30
