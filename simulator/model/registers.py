"""The meter's registers and their persistence: energy, transaction registers, PG and the last record.

Energy is integrated lazily over the load ramps in integer µJ (the remainder below 1 mWh is carried), wraps at
the register width (``energy``), and is persisted through ``Memory`` when it moved (meter-api.md §3.1, §3.4;
docs/persistence.md). Pure: the caller passes the time, memory does the I/O.
"""

from __future__ import annotations

import contextlib

from iemdcr_twin.simulator.model import energy
from iemdcr_twin.simulator.model.errors import StorageError
from iemdcr_twin.simulator.model.memory import Memory, NonVolatile, SignedRecord, reconcile


class Registers:
    """The non-volatile counters of one meter (absolute import/export in µJ, ``next_pagination``,
    ``last_transaction``), the volatile transaction registers, and the load they integrate.

    Every write goes through ``Memory`` before the change counts: a method that raises ``StorageError`` (503
    ``storage_error``, meter-api.md §1) has changed nothing.
    """

    def __init__(
        self, memory: Memory, state: NonVolatile, fingerprint: str | None, rated_current_A: float, t: float
    ) -> None:
        """Adopt ``state`` at simulation time ``t``. A factory-new state (``fingerprint`` None) is saved first:
        the key is durable before anything is signed with it (``StorageError`` propagates). A loaded state is
        reconciled with the records its key (``fingerprint``) signed since (``memory.reconcile``); writing that
        repair back may wait for the next checkpoint."""
        self._memory = memory
        self._rated_current_A = rated_current_A
        if fingerprint is None:
            memory.save(state)
            saved = state
        else:
            recent = memory.records_since(fingerprint, state.next_pagination)
            saved, state = state, reconcile(state, recent, fingerprint)
            if state != saved:
                with contextlib.suppress(StorageError):  # the records hold the repair (a full disk)
                    memory.save(state)
                    saved = state
        self._adopt(state)
        self._saved = saved
        self._history: list[SignedRecord] | None = None  # read from memory when first asked for
        self._current = energy.Ramp.constant(0.0, t)
        self._voltage = energy.Ramp.constant(0.0, t)
        self._integrated_to = t
        self._tx_start: tuple[int, int] | None = None  # the absolute registers at B, while a transaction runs
        self._tx_mwh = (0, 0)  # the transaction registers frozen at the last end (zero after power-up)

    def _adopt(self, state: NonVolatile) -> None:
        self._serial, self._profile, self.key_pem = state.serial, state.profile, state.key_pem
        self.key_generation = state.key_generation
        self.import_uj = state.import_uj
        self.export_uj = state.export_uj
        self.next_pagination = state.next_pagination
        self.last_transaction = state.last_transaction

    def _state(self) -> NonVolatile:
        return NonVolatile(
            self._serial,
            self._profile,
            self.key_pem,  # kept as text: a checkpoint after every clock jump must stay cheap
            self.key_generation,
            self.import_uj,
            self.export_uj,
            self.next_pagination,
            self.last_transaction,
        )

    # ---- persistence -----------------------------------------------------------------------------------

    @property
    def records(self) -> list[SignedRecord]:
        """Every signed record, in signing order; read from memory on first use, so start-up does not wait."""
        if self._history is None:
            self._history = self._memory.history()
        return self._history

    def persist(self) -> None:
        """Save the non-volatile state if it changed; ``StorageError``: nothing counts as saved."""
        state = self._state()
        if state != self._saved:
            self._memory.save(state)
            self._saved = state

    def checkpoint(self) -> bool:
        """Persist if anything moved since the last save (call ``advance`` first); whether it wrote.
        ``StorageError`` when the write failed (the next checkpoint tries again)."""
        before = self._saved
        self.persist()
        return self._saved is not before

    def add_record(self, record: SignedRecord) -> None:
        """Store a signed record (durable with PG and the registers: ``reconcile`` reads them back), then count
        it: PG advances and it becomes the last transaction. ``StorageError`` leaves everything as it was."""
        self._memory.add_record(record)
        if self._history is not None:  # else memory has it for when the history is first read
            self._history.append(record)
        self.next_pagination += 1
        self.last_transaction = record.ocmf

    def reset(self, state: NonVolatile) -> None:
        """A new meter in the same slot (factory reset): ``state`` is saved before it replaces the current one
        (``StorageError`` keeps the old); the history stays."""
        self._memory.save(state)
        self._saved = state
        self._adopt(state)

    def set_mwh(self, import_mwh: int | None, export_mwh: int | None) -> None:
        """Put the absolute registers at whole mWh (``None``: unchanged; the part below 1 mWh is zeroed), saved
        before they count: ``StorageError`` restores the old values. The caller checks the range."""
        old = self.import_uj, self.export_uj
        if import_mwh is not None:
            self.import_uj = import_mwh * energy.UJ_PER_MWH
        if export_mwh is not None:
            self.export_uj = export_mwh * energy.UJ_PER_MWH
        try:
            self.persist()
        except StorageError:
            self.import_uj, self.export_uj = old
            raise

    # ---- energy ------------------------------------------------------------------------------------------

    def advance(self, t: float, counting: bool = True) -> None:
        """Integrate the load up to simulation time ``t`` (seconds); ``counting`` False (meter unpowered) lets
        the time pass without energy. Exact for the linear ramps (``energy.integrate``), wrapped at the width."""
        if counting and t > self._integrated_to:
            imported, exported = energy.integrate(
                self._current, self._voltage, self._rated_current_A, self._integrated_to, t
            )
            self.import_uj = energy.wrap_uj(self.import_uj + energy.joules_to_uj(imported))
            self.export_uj = energy.wrap_uj(self.export_uj + energy.joules_to_uj(exported))
        self._integrated_to = max(self._integrated_to, t)

    def restart(self, t: float) -> None:
        """Power-up at ``t`` (meter-api.md §3.1): nothing counted before it, transaction registers zero."""
        self._integrated_to = t
        self._tx_start = None
        self._tx_mwh = (0, 0)

    def set_load(self, t: float, current_A: float | None, voltage_V: float | None, ramp_s: float) -> None:
        """New load targets from ``t`` on (``advance(t)`` first), reached linearly after ``ramp_s`` seconds."""
        if current_A is not None:
            self._current = energy.Ramp(self._current.at(t), current_A, t, t + ramp_s)
        if voltage_V is not None:
            self._voltage = energy.Ramp(self._voltage.at(t), voltage_V, t, t + ramp_s)

    def current_A(self, t: float) -> float:
        """The current reading in A at ``t``, saturated at the rated current (meter-api.md §5)."""
        return energy.saturate(self._current.at(t), self._rated_current_A)

    def voltage_V(self, t: float) -> float:
        """The voltage reading in V at ``t``."""
        return self._voltage.at(t)

    def load_targets(self) -> dict[str, float]:
        """Where the load is going: ``target_current_A``, ``target_voltage_V`` and ``ramp_until`` (seconds)."""
        return {
            "target_current_A": self._current.end,
            "target_voltage_V": self._voltage.end,
            "ramp_until": max(self._current.t1, self._voltage.t1),
        }

    @property
    def import_mwh(self) -> int:
        """The absolute import register in whole mWh (RD[0] of metervalue, RV of a reading)."""
        return energy.uj_to_mwh(self.import_uj)

    @property
    def export_mwh(self) -> int:
        """The absolute export register in whole mWh."""
        return energy.uj_to_mwh(self.export_uj)

    # ---- transaction registers (meter-api.md §3.4) ----------------------------------------------------------

    def begin_transaction(self) -> None:
        """B: the transaction registers count from the absolute registers as they are now."""
        self._tx_start = (self.import_uj, self.export_uj)

    def end_transaction(self) -> None:
        """The end: the transaction registers keep their values until the next B."""
        self._tx_mwh = self.transaction_mwh()
        self._tx_start = None

    def transaction_mwh(self) -> tuple[int, int]:
        """Transaction import and export in whole mWh since the last B (frozen after the end, zero after
        power-up), across a wrap of the absolute registers too."""
        if self._tx_start is None:
            return self._tx_mwh
        start_import, start_export = self._tx_start
        return (
            energy.uj_to_mwh(energy.register_delta(start_import, self.import_uj)),
            energy.uj_to_mwh(energy.register_delta(start_export, self.export_uj)),
        )
