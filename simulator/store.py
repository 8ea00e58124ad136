"""Non-volatile memory on disk: one folder per meter serial, every write atomic (temp, fsync, rename).

A process killed at any instant leaves either the old or the new file, never a torn one. Records are one file
each, written before the state that counts them, so a crash in between is repaired on load
(``model.memory.reconcile``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from iemdcr_twin.simulator.model.errors import StorageError
from iemdcr_twin.simulator.model.memory import NonVolatile, SignedRecord
from iemdcr_twin.simulator.ocmf import Signer, payload_of

log = logging.getLogger("iemdcr.store")
STATE_FILE = "state.json"
RECORDS_DIR = "records"
LOCK_FILE = "lock"  # DIR/<serial>/lock: held (flock) by the one process that serves the meter
FAILURE_LOG_INTERVAL_S = 60.0


def write_atomic(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write, fsync, rename, fsync the folder: the new content is durable when this returns.

    ``replace=False`` never replaces a file already at ``path``: the temporary file is hard-linked to the name
    (``link`` fails with ``FileExistsError`` when the name is taken) and then removed; on a file system without
    hard links the name is checked first instead. Raises ``OSError`` (a full disk: ENOSPC; ``FileExistsError``);
    the old file is then still in place and the temporary one gone.
    """
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
        else:
            _publish_new(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(path.parent)


def _publish_new(temp: Path, path: Path) -> None:
    """Give ``temp`` the name ``path`` unless that name exists (``FileExistsError``); ``temp`` is gone after."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError as exc:  # no hard links here (some FUSE and network file systems): check, then rename
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FailureLog:
    """Write failures, logged at most once per ``FAILURE_LOG_INTERVAL_S`` for all the meters sharing it, and the
    recovery once writes succeed again (a full disk must not fill the log as well)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._logged_at: float | None = None
        self.failures = 0  # since the last line
        self.failing = False
        self._holding = False
        self._held: tuple[Path, OSError] | None = None  # the last failure while held

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Start-up: failures are counted but not logged while building the meters. When building fails the
        caller reports the failure itself (``serve`` prints one line and exits, so a "retried" promise would be
        wrong); when it goes on (a repair that waits for the next checkpoint), the last held failure is logged as
        usual, with the count of all."""
        self._holding = True
        try:
            yield
        except BaseException:
            self._held = None
            raise
        finally:
            self._holding = False
        if self._held is not None:
            path, exc = self._held
            self._held = None
            self._log(path, exc)

    def failed(self, path: Path, exc: OSError) -> None:
        self.failures += 1
        if self._holding:
            self._held = (path, exc)
        else:
            self._log(path, exc)

    def _log(self, path: Path, exc: OSError) -> None:
        """Log the failure of ``path`` (counted already) unless a line went out less than the interval ago."""
        now = self._monotonic()
        if not self.failing or self._logged_at is None or now - self._logged_at >= FAILURE_LOG_INTERVAL_S:
            log.error(
                "cannot write %s: %s (%d failed writes; retried at the next checkpoint or request)",
                path,
                exc.strerror or exc,
                self.failures,
                extra={"path": str(path), "errno": exc.errno},
            )
            self._logged_at, self.failures = now, 0
        self.failing = True

    def succeeded(self) -> None:
        if self.failing:
            log.warning(
                "writes to the state directory succeed again (%d more failed since the last line)", self.failures
            )
            self.failing, self.failures, self._logged_at = False, 0, None


class UnusableFolder(Exception):
    """A meter's folder the twin does not start on; the message names the file, the problem and what to do.

    The CLI prints it and exits with status 2 (docs/persistence.md).
    """

    def __init__(self, path: Path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}. {remedy}")
        self.path = path


class DamagedMemory(UnusableFolder):
    """A meter's folder cannot be trusted: a file that is missing or does not parse, a key of the wrong type.

    Raised at start-up (``FileMemory.load``): the twin refuses to start rather than reset a meter or hide a
    signed record. A record damaged while the twin runs raises it from ``history``; the control API answers
    503 ``storage_error`` naming the file (docs/persistence.md).
    """


class FolderInUse(UnusableFolder):
    """Another process (or another ``FileMemory`` in this one) holds the meter's folder (its lock file)."""


class WrongProfile(UnusableFolder):
    """The folder holds a meter of another profile (model) than the one asked for."""


class FileMemory:
    """The ``Memory`` of one meter in ``DIR/<serial>/``.

    One process at a time: opening takes an exclusive ``flock`` on ``DIR/<serial>/lock`` (``FolderInUse``
    when another process or another ``FileMemory`` holds it), kept until ``close`` or until the object is
    collected; the kernel releases it when the process dies, so a SIGKILL leaves no stale lock. ``profile``
    (a profile name): ``load`` refuses a folder whose state holds another (``WrongProfile``).

    Every ``OSError`` of a write becomes a ``StorageError`` here and nowhere else; ``failures`` logs them.
    Record files are named ``<sequence>-<fingerprint>-T<PG>.json`` and never replaced; any other name in
    ``records/`` is not a record (a warning at start-up names it), and temporary files of interrupted writes
    are skipped silently.
    """

    def __init__(
        self, root: Path, serial: str, failures: FailureLog | None = None, *, profile: str | None = None
    ) -> None:
        self.failures = failures or FailureLog()
        self.folder = Path(root) / serial
        self.profile = profile
        self._records = self.folder / RECORDS_DIR
        with self._writing(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        self._release = weakref.finalize(self, os.close, self._lock())
        try:
            with self._writing(self._records):
                self._records.mkdir(exist_ok=True)
            # Records are named by a running sequence number first, so listing them gives signing order even
            # across factory resets (a fingerprint first would sort keys by their hex, not by their age).
            self._sequence = self._next_sequence(self._record_names())
        except BaseException:
            self.close()
            raise

    def _lock(self) -> int:
        """Open ``lock`` and take an exclusive, non-blocking ``flock`` on it; the descriptor holds the lock."""
        path = self.folder / LOCK_FILE
        with self._writing(path):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(descriptor)
                os.close(descriptor)
                raise FolderInUse(
                    self.folder,
                    f"another iemdcr-sim{holder} holds this meter's folder (its {LOCK_FILE} file is locked); two "
                    "twins on one folder would sign the same PG twice",
                    "Stop that twin first, or give this one another --state-dir",
                ) from None
            except OSError:  # a file system without locks (ENOLCK): a StorageError like any other
                os.close(descriptor)
                raise
        with contextlib.suppress(OSError):  # who holds it, for the message above; not needed for the lock
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return descriptor

    def close(self) -> None:
        """Release the folder (the lock); nothing is written. Idempotent."""
        self._release()

    def _record_names(self, *, warn: bool = False) -> list[str]:
        """Record file names in signing order (sorting names, not Path objects: 23k records in 15 ms, not 0.3 s)."""
        found: list[tuple[int, str]] = []
        with os.scandir(self._records) as entries:
            for entry in entries:
                match = RECORD_NAME.fullmatch(entry.name)
                if match is not None and entry.is_file(follow_symlinks=False):
                    found.append((int(match["sequence"]), entry.name))
                elif warn and not TEMPORARY.fullmatch(entry.name):
                    log.warning(
                        "%s is not a record file (<sequence>-<fingerprint>-T<PG>.json); ignored",
                        self._records / entry.name,
                        extra={"path": str(self._records / entry.name)},
                    )
        return [name for _, name in sorted(found)]

    @staticmethod
    def _next_sequence(names: list[str]) -> int:
        if not names:
            return 0
        match = RECORD_NAME.fullmatch(names[-1])
        assert match is not None
        return int(match["sequence"]) + 1

    def load(self) -> NonVolatile | None:
        """The state last saved, once every file of the folder was checked (start-up).

        Raises ``DamagedMemory`` naming the file: a state file that is missing beside signed records, that does
        not parse, whose key has the wrong type or range, or that holds another serial than its folder's name; a
        record file that does not parse, or whose PG in its name, in ``pagination`` and in its signed OCMF
        disagree. Every record is
        read for this, so nothing signed is hidden by a damaged file (the history itself is read again only
        when first asked for).
        """
        names = self._record_names(warn=True)
        self._check_records(names)
        state_path = self.folder / STATE_FILE
        if not state_path.exists():
            if names:
                raise DamagedMemory(
                    state_path,
                    f"missing, but {self._records} holds {len(names)} signed records of this meter; starting a new "
                    "meter here would put a new key and PG T1 beside them",
                    f"Restore {STATE_FILE} from a backup to keep this meter, or move {self.folder} away (its records "
                    "stay there) to start a new meter on purpose",
                )
            return None
        remedy = (
            f"Fix that key or restore {STATE_FILE} from a backup; to start a new meter on purpose, move "
            f"{self.folder} away (its records stay there)"
        )
        try:
            state = NonVolatile.from_dict(_decode(state_path.read_bytes()))
        except (OSError, ValueError, RecursionError) as exc:
            raise DamagedMemory(state_path, f"unreadable meter state ({exc})", remedy) from None
        try:
            Signer.from_pem(state.key_pem)
        except Exception as exc:  # ecdsa raises several kinds for a PEM it cannot read
            raise DamagedMemory(state_path, f"key 'key_pem' is not a PEM private key ({exc})", remedy) from None
        if self.profile is not None and state.profile != self.profile:
            raise WrongProfile(
                state_path,
                f"holds a meter of profile {state.profile}, not {self.profile} as asked; its key and records "
                f"belong to a {state.profile}",
                f"Ask for profile {state.profile} to serve this meter, or move {self.folder} away (its records stay "
                f"there) to start a new {self.profile} on purpose",
            )
        if state.serial != self.folder.name:
            raise DamagedMemory(
                state_path,
                f"holds meter {state.serial!r}, but its folder is {self.folder.name!r}; a meter's folder is named "
                "after its serial",
                f"Move the folder to {self.folder.parent / state.serial} if it is that meter's, or restore "
                f"{STATE_FILE} of {self.folder.name} from a backup",
            )
        return state

    def _check_records(self, names: list[str]) -> None:
        folder = os.open(self._records, os.O_RDONLY)
        try:
            for name in names:
                _read_record(self._records, folder, name)
        finally:
            os.close(folder)

    def records_since(self, fingerprint: str, pagination: int) -> list[SignedRecord]:
        """Chosen by file name first (``...-<fingerprint>-T<pagination>.json``): start-up reads only these."""
        names = [name for name in self._record_names() if _may_be_since(name, fingerprint, pagination)]
        records = self._read(names)
        return [r for r in records if r.key_fingerprint == fingerprint and r.pagination >= pagination]

    def history(self) -> list[SignedRecord]:
        return self._read(self._record_names())

    def _read(self, names: list[str]) -> list[SignedRecord]:
        folder = os.open(self._records, os.O_RDONLY)
        try:
            return [_read_record(self._records, folder, name) for name in names]
        finally:
            os.close(folder)

    def save(self, state: NonVolatile) -> None:
        path = self.folder / STATE_FILE
        with self._writing(path):
            write_atomic(path, json.dumps(state.as_dict(), indent=1).encode())

    def add_record(self, record: SignedRecord) -> None:
        """Store a record in a new file; a file already at its name is never replaced (``StorageError``)."""
        path = self._records / f"{self._sequence:08d}-{record.key_fingerprint}-T{record.pagination:010d}.json"
        with self._writing(path):
            write_atomic(path, json.dumps(record.as_dict()).encode(), replace=False)
        self._sequence += 1

    @contextlib.contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            self.failures.failed(path, exc)
            raise StorageError(
                f"the meter's non-volatile memory could not be written ({exc.strerror or exc}); nothing changed",
                path=str(path),
            ) from exc
        self.failures.succeeded()


RECORD_NAME = re.compile(r"(?P<sequence>[0-9]{8,})-(?P<fingerprint>[0-9a-f]{16})-T(?P<pagination>[0-9]{10,})\.json")
TEMPORARY = re.compile(r"\..+\.tmp")  # what write_atomic leaves when the process dies mid-write


def _holder(descriptor: int) -> str:
    """`` (pid N)`` as the holder of a lock file wrote it, or nothing when it cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(descriptor, 32, 0))
        return f" (pid {pid}{', this process' if pid == os.getpid() else ''})"
    return ""


def _may_be_since(name: str, fingerprint: str, pagination: int) -> bool:
    """False for a record file whose name says it is of another key or older."""
    match = RECORD_NAME.fullmatch(name)
    assert match is not None  # _record_names lists only such names
    return match["fingerprint"] == fingerprint and int(match["pagination"]) >= pagination


def _read_at(folder: int, name: str) -> bytes:
    """A file's bytes, opened by name in an open folder: cheaper than a Path read for thousands of records."""
    handle = os.open(name, os.O_RDONLY, dir_fd=folder)
    try:
        chunks = []
        while chunk := os.read(handle, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(handle)


def _read_record(records: Path, folder: int, name: str) -> SignedRecord:
    """The record in ``records/name``; DamagedMemory when it does not parse, or when the PG of its file name,
    its ``pagination`` and the PG of its signed OCMF payload disagree (an edited or mis-copied file)."""
    remedy = (
        f"Nothing signed may be lost, so the twin does not go on without it: restore the file from a backup, or "
        f"move it out of {records} to go on without it"
    )
    try:
        record = SignedRecord.from_dict(_decode(_read_at(folder, name)))
    except (OSError, ValueError, RecursionError) as exc:  # the Path is made only here: a history loads record by record
        raise DamagedMemory(records / name, f"unreadable signed record ({exc})", remedy) from None
    match = RECORD_NAME.fullmatch(name)
    assert match is not None  # _record_names lists only such names
    named, signed = int(match["pagination"]), _signed_pagination(record.ocmf)
    if not named == record.pagination == signed:
        raise DamagedMemory(
            records / name,
            f"damaged signed record: its PG disagrees (T{named} in the file name, {record.pagination} in "
            f"'pagination', {'T' + str(signed) if signed is not None else 'none'} in the signed OCMF)",
            remedy,
        )
    return record


_PG = re.compile(r"T([0-9]+)")


def _signed_pagination(ocmf: str) -> int | None:
    """The number of the PG (``"T<n>"``) in an OCMF record's payload, or None when it has none."""
    payload = payload_of(ocmf)
    pg = payload.get("PG") if payload is not None else None
    match = _PG.fullmatch(pg) if isinstance(pg, str) else None
    return int(match[1]) if match else None


def _decode(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("meter memory must be a JSON object")
    return data
