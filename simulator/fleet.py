"""A twin: N meters sharing one simulation clock, each on its own meter-API port, plus their lifecycles.

Power off closes a meter's listener (connections are refused, like unplugged hardware); power on opens it
again on the same port. The control API and the scenario runner both drive a ``Twin``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from iemdcr_twin.simulator.clock import SimClock
from iemdcr_twin.simulator.host import MeterHost
from iemdcr_twin.simulator.journal import Journal
from iemdcr_twin.simulator.limits import IDLE_TIMEOUT_S, app_runner
from iemdcr_twin.simulator.meter_api import create_meter_app
from iemdcr_twin.simulator.model import Memory, Meter, RamMemory, StorageError, Switches, get_profile
from iemdcr_twin.simulator.model.profiles import check_serial
from iemdcr_twin.simulator.ocmf import Signer
from iemdcr_twin.simulator.store import FailureLog, FileMemory

CHECKPOINT_INTERVAL_S = 5.0


@dataclass
class MeterSpec:
    """How to build one meter: from flags or a fleet file."""

    port: int
    profile: str = "iem-dcr-125"
    serial: str | None = None
    switches: dict[str, Any] = field(default_factory=dict)


class UnknownMeter(KeyError):
    """No meter with that serial in this twin."""


class CannotListen(OSError):
    """A port cannot be opened: the message names the host, the port, whose it is and why (the port is taken,
    the host does not resolve or is no address of this machine)."""

    def __init__(self, host: str, port: int, owner: str, error: OSError) -> None:
        super().__init__(f"cannot listen on host {host} port {port} ({owner}): {reason(error)}")
        self.host = host
        self.port = port
        self.error = error


def reason(error: OSError) -> str:
    """An OSError's own words without its ``[Errno N]``: ``Address already in use``, ``Name or service not
    known``."""
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno)
    return str(error)


class MeterSlot:
    """One meter with its listener.

    A connection idle or half-open for ``idle_timeout_s`` wall seconds is closed (aiohttp's keep-alive timer,
    which also runs from the moment a connection is accepted), a request body that takes longer gets 408, and
    the unread rest of a refused body is awaited at most as long (aiohttp's lingering close): connections
    nobody uses cannot hold the process's descriptors. The value in force when the listener first opens counts.
    """

    def __init__(self, host: MeterHost, bind: str, port: int, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.host = host
        self.bind = bind
        self.port = port
        self.idle_timeout_s = idle_timeout_s
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._reservation: socket.socket | None = None
        self.power_task: asyncio.Task[None] | None = None

    @property
    def meter(self) -> Meter:
        return self.host.meter

    @property
    def url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._site is not None

    def reserve(self) -> None:
        """Hold the meter's port with a bound, never listening socket for the slot's whole life.

        Power off closes the listener; without the reservation another process (or twin) could be given the
        port meanwhile, and a driver would talk to a foreign meter. Connections to a bound socket that does
        not listen are refused, like an unplugged meter; the listener shares the port (both SO_REUSEADDR,
        only one listens), and the kernel never hands a bound port to ``bind(0)``.

        Raises CannotListen naming the host and the port when the host does not resolve or the bind fails.
        """
        if self._reservation is not None:
            return
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.bind, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
        except OSError as exc:
            raise CannotListen(self.bind, self.port, f"meter {self.meter.serial}", exc) from None
        reservation = socket.socket(family, kind, proto)
        try:
            reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            reservation.bind(address)
        except OSError as exc:
            reservation.close()
            raise CannotListen(self.bind, self.port, f"meter {self.meter.serial}", exc) from None
        self._reservation = reservation
        self.port = reservation.getsockname()[1]

    async def open(self) -> None:
        if self._site is not None:
            return
        self.reserve()
        if self._runner is None:
            self._runner = app_runner(
                create_meter_app(self.host, body_timeout_s=self.idle_timeout_s), self.idle_timeout_s
            )
        if self._runner.server is None:
            await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, reuse_address=True)
        await site.start()
        self._site = site

    async def close(self) -> None:
        """Stop listening and drop open connections, as when the meter loses power."""
        if self._site is None:
            return
        site, self._site = self._site, None
        await site.stop()
        server = self._runner.server if self._runner is not None else None
        if server is not None:
            for connection in list(server.connections):
                connection.force_close()

    async def shutdown(self) -> None:
        await self.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None


class Twin:
    """Meters, their clock, and what a lab does to them."""

    def __init__(
        self,
        clock: SimClock | None = None,
        *,
        bind: str = "127.0.0.1",
        state_dir: Path | None = None,
        seed: str | None = None,
        journal_size: int = 10_000,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.clock = clock or SimClock()
        self.bind = bind
        self.state_dir = state_dir
        self.seed = seed
        self.journal_size = journal_size
        self.idle_timeout_s = idle_timeout_s  # for every meter port; start() hands it to the meters
        self.slots: dict[str, MeterSlot] = {}
        self.storage_failures = FailureLog()  # one rate limit for the whole fleet's write failures
        self._folders: list[FileMemory] = []  # the meters' folders this twin holds (state_dir)
        self._checkpointer: asyncio.Task[None] | None = None

    # ---- building --------------------------------------------------------------------------------------

    def add_meter(self, spec: MeterSpec, index: int = 0) -> MeterSlot:
        profile = get_profile(spec.profile)
        serial = check_serial(spec.serial or profile.serial_plus(index))
        if serial in self.slots:
            raise ValueError(f"serial {serial} is used twice")
        switches = Switches().updated(spec.switches)
        if self.state_dir is None:
            memory: Memory = RamMemory()
        else:
            # Holds DIR/<serial> for this twin's life (FolderInUse when another process does); refuses a folder
            # of another profile (WrongProfile); released by ``close_memories``.
            memory = folder = FileMemory(self.state_dir, serial, self.storage_failures, profile=profile.name)
            self._folders.append(folder)
        try:
            meter = Meter(profile, serial, self.clock.now, memory, self._signer_factory(serial), switches)
        except BaseException:
            if self.state_dir is not None:
                self._folders.pop().close()
            raise
        slot = MeterSlot(MeterHost(meter, self.clock, Journal(self.journal_size)), self.bind, spec.port)
        self.slots[serial] = slot
        return slot

    def close_memories(self) -> None:
        """Release every meter's folder in the state dir (their locks); ``stop`` does it after its last
        checkpoint. The kernel does the same for a process that dies."""
        for folder in self._folders:
            folder.close()

    def _signer_factory(self, serial: str):  # type: ignore[no-untyped-def]
        seed = self.seed

        def new_signer(generation: int) -> Signer:
            if seed is not None:
                return Signer.from_seed(seed, serial, generation)
            return Signer.generate()

        return new_signer

    def slot(self, serial: str) -> MeterSlot:
        try:
            return self.slots[serial]
        except KeyError:
            raise UnknownMeter(serial) from None

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        for slot in self.slots.values():
            slot.idle_timeout_s = self.idle_timeout_s
            slot.reserve()
            if slot.meter.powered:
                await slot.open()
        self.clock.after_jump.append(self.checkpoint)
        self._checkpointer = asyncio.create_task(self._checkpoint_loop())

    async def stop(self) -> None:
        if self.checkpoint in self.clock.after_jump:
            self.clock.after_jump.remove(self.checkpoint)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        for slot in self.slots.values():
            if slot.power_task is not None:
                slot.power_task.cancel()
        self.checkpoint()
        try:
            for slot in self.slots.values():
                await slot.shutdown()
        finally:
            self.close_memories()

    def checkpoint(self) -> None:
        """Persist every meter's registers that moved since their last save (docs/persistence.md).

        Runs every few seconds of wall time, after every clock jump (an ``advance`` may add hours in one step)
        and at shutdown, so a SIGKILL loses at most the unsigned energy of one short interval. A failed write
        is logged (rate-limited, by the store) and retried at the next checkpoint; it never stops the others.
        """
        for slot in self.slots.values():
            with contextlib.suppress(StorageError):
                slot.meter.checkpoint()

    async def _checkpoint_loop(self) -> None:
        """Persist moving registers every few seconds of wall time (meter-api.md §3.1), not on every read."""
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            self.checkpoint()

    # ---- power -----------------------------------------------------------------------------------------

    async def set_power(self, serial: str, on: bool) -> None:
        slot = self.slot(serial)
        if slot.power_task is not None:
            slot.power_task.cancel()
            slot.power_task = None
        if on:
            slot.meter.power_on()
            await slot.open()
        else:
            # The model first: a StorageError leaves it powered with its port open. Closing cannot interleave
            # with a request (the close does not yield before the connections are dropped).
            slot.meter.power_off()
            await slot.close()

    async def power_cycle(self, serial: str, off_s: float = 0.0) -> None:
        """Off now; on again after ``off_s`` simulated seconds (in the background when off_s > 0)."""
        slot = self.slot(serial)
        await self.set_power(serial, False)
        if off_s <= 0:
            await self.set_power(serial, True)
            return

        wake_at = self.clock.now() + off_s  # counted from now, not from when the task first runs

        async def later() -> None:
            await self.clock.sleep(wake_at - self.clock.now())
            slot.power_task = None
            slot.meter.power_on()
            await slot.open()

        slot.power_task = asyncio.create_task(later())
