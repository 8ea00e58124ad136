"""The IEM-DCR meter model: every rule of meter-api.md §3, pure and synchronous.

Adapters (the meter API, the control API, the scenario runner) call these methods with request bodies as
parsed JSON and get typed values back (``model.values``: the meter API renders them), or a ``Refusal`` that
says why nothing changed. Time comes from an injected ``now`` function (simulation seconds since the epoch);
durable memory from an injected ``Memory``, through the meter's ``Registers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iemdcr_twin.simulator.model import energy, faults, requests
from iemdcr_twin.simulator.model.errors import Refusal, precondition
from iemdcr_twin.simulator.model.memory import Memory, NonVolatile, SignedRecord
from iemdcr_twin.simulator.model.profiles import Profile, Switches
from iemdcr_twin.simulator.model.registers import Registers
from iemdcr_twin.simulator.model.timefmt import format_tm, parse_tm
from iemdcr_twin.simulator.model.values import (
    GwBlock,
    LiveReading,
    OpenTransaction,
    PublicKey,
    ReceiptAnswer,
    UserBlock,
)
from iemdcr_twin.simulator.ocmf import (
    FAULTY_RECORD_KINDS,
    SIGNATURE_ALGORITHM,
    Reading,
    RecordContent,
    Signer,
    sign_record,
)

Listener = Callable[[str, dict[str, Any]], None]


class Meter:
    """One IEM-DCR: identity, clock, registers, transactions, faults, power (meter-api.md §3).

    ``new_signer(generation)`` makes the key of a factory-new meter (generation 0) and of each factory reset;
    ``now()`` is the simulation time in seconds. ``StorageError`` when a factory-new meter cannot save its key.
    """

    def __init__(
        self,
        profile: Profile,
        serial: str,
        now: Callable[[], float],
        memory: Memory,
        new_signer: Callable[[int], Signer],
        switches: Switches | None = None,
    ) -> None:
        self.profile = profile
        self.serial = serial
        self.switches = switches or Switches()
        self._now = now
        self._new_signer = new_signer
        self.listeners: list[Listener] = []
        self.state_version = 0  # bumped by every change of state (not by time passing)
        self.faults: frozenset[str] = frozenset()
        self.next_record_fault: str | None = None
        self.counters = {"transactions": 0, "signatures": 0, "faults_raised": 0, "power_cycles": 0}
        t = now()
        state = memory.load()
        if state is None:
            self.signer = new_signer(0)
            state = self._factory_new(self.signer, 0)
            self.registers = Registers(memory, state, None, profile.rated_current_A, t)
        else:
            self.signer = Signer.from_pem(state.key_pem)
            self.registers = Registers(memory, state, self.signer.fingerprint, profile.rated_current_A, t)
        self.powered = True
        self._power_up(t)

    def _factory_new(self, signer: Signer, generation: int) -> NonVolatile:
        """The non-volatile state of a new meter with ``signer``'s key: zero registers, PG at its first value."""
        return NonVolatile(
            self.serial, self.profile.name, signer.to_pem(), generation, 0, 0, self.profile.first_pagination, None
        )

    @property
    def records(self) -> list[SignedRecord]:
        """Every signed record, in signing order (archived ones of earlier keys too)."""
        return self.registers.records

    def checkpoint(self) -> bool:
        """Persist the registers if they moved; adapters call this every few seconds, after every clock jump and
        at shutdown (docs/persistence.md). Returns whether it wrote; raises ``StorageError`` when the write
        failed (the next checkpoint tries again)."""
        self._integrate()
        return self.registers.checkpoint()

    def _power_up(self, t: float) -> None:
        """Reset every volatile thing (meter-api.md §3.1)."""
        self.gw_written = False
        self.CT = ""
        self.CI = ""
        self._time_written: float | None = None  # the written epoch...
        self._time_written_at = 0.0  # ...and the simulation time it was written at
        self.tz_minutes = 0
        self.time_status = "U"
        self.TT = ""
        self.user: UserBlock | None = None
        self.last_receipt: str | None = None
        self._receipt_ready_at = 0.0
        self.transaction: OpenTransaction | None = None
        self.registers.restart(t)

    # ---- time and energy -------------------------------------------------------------------------------

    def _integrate(self) -> float:
        t = self._now()
        self.registers.advance(t, counting=self.powered)
        return t

    def meter_tm(self, t: float | None = None) -> str:
        """Meter time (now, or at simulation time ``t``) with its status letter, as TM (meter-api.md §3.3)."""
        t = self._now() if t is None else t
        moment = t if self._time_written is None else self._time_written + (t - self._time_written_at)
        return f"{format_tm(moment, self.tz_minutes)} {self.time_status}"

    def _set_time(self, epoch: float, tz_minutes: int) -> None:
        self._time_written, self._time_written_at = epoch, self._now()
        self.tz_minutes = tz_minutes
        self.time_status = self.switches.time_status_after_set

    @property
    def current_A(self) -> float:
        """The current now, in A, saturated at the rated current (meter-api.md §3.4, §5)."""
        return self.registers.current_A(self._now())

    @property
    def voltage_V(self) -> float:
        """The voltage now, in V."""
        return self.registers.voltage_V(self._now())

    def set_load(self, current_A: float | None = None, voltage_V: float | None = None, ramp_s: float = 0.0) -> None:
        """Change the electrical inputs (A, V; ``None`` keeps one), ramped linearly over ``ramp_s`` simulated
        seconds (meter-api.md §3.4)."""
        t = self._integrate()
        self.registers.set_load(t, current_A, voltage_V, ramp_s)
        self._emit("load", {"current_A": current_A, "voltage_V": voltage_V, "ramp_s": ramp_s})

    # ---- status --------------------------------------------------------------------------------------

    def status(self, active: frozenset[str] | None = None) -> tuple[str, str]:
        """(ST, EF) of the most severe active fault, ``("G", "")`` when healthy (of ``active`` when given: a
        fault being raised) (meter-api.md §3.8)."""
        fault = faults.worst(self.faults if active is None else active)
        return ("G", "") if fault is None else (fault.st, fault.ef)

    def _blocking_fault(self) -> str | None:
        for fault in faults.CATALOGUE:
            if fault.name in self.faults and fault.blocks_receipts:
                return fault.name
        return None

    def above_threshold(self) -> bool:
        """Whether |I| is above the activation threshold (meter-api.md §3.5)."""
        return abs(self.current_A) > self.switches.activation_threshold_A

    def status_word(self) -> int:
        """XS as a number: bit 0 transaction, 1 gw written, 2 time set, 3 above threshold, 8+ faults (§3.8)."""
        bits = faults.fault_bits(self.faults)
        bits |= 1 if self.transaction else 0
        bits |= 2 if self.gw_written else 0
        bits |= 4 if self.time_status != "U" else 0
        bits |= 8 if self.above_threshold() else 0
        return bits

    # ---- meter API (meter-api.md §2) --------------------------------------------------------------------

    def get_gw(self) -> GwBlock:
        """``GET gw`` (§3.2)."""
        return GwBlock(self.CT, self.CI, self.meter_tm())

    def post_gw(self, body: dict[str, Any]) -> GwBlock:
        """``POST gw`` (§3.2): CT and CI of 1..64 characters, TM sets the clock. Refusal 400 (``missing_key``,
        ``bad_type``, ``bad_value``, ``bad_time``), then 428 ``gw_already_set`` after the first in a power cycle."""
        ct = requests.text(body, "CT", 1, 64)
        ci = requests.text(body, "CI", 1, 64)
        epoch, tz = parse_tm(requests.require(body, "TM"))
        if self.gw_written:
            raise precondition("gw_already_set", "gw was already written in this power cycle")
        self.CT, self.CI, self.gw_written = ct, ci, True
        self._set_time(epoch, tz)
        self._emit("gw", {"CT": ct, "CI": ci})
        return self.get_gw()

    def get_tariff(self) -> str:
        """``GET tariff`` (§3.7): TT."""
        return self.TT

    def post_tariff(self, body: dict[str, Any]) -> str:
        """``POST tariff`` (§3.7): TT of 0..250 characters. Refusal 400, then 428 ``transaction_running``."""
        tariff = requests.text(body, "TT", 0, 250)
        self._refuse_during_transaction()
        self.TT = tariff
        self._emit("tariff", {"TT": tariff})
        return self.TT

    def get_datetime(self) -> str:
        """``GET datetime`` (§3.3): TM with its status letter."""
        return self.meter_tm()

    def post_datetime(self, body: dict[str, Any]) -> str:
        """``POST datetime`` (§3.3): the new TM. Refusal 400 ``bad_time``/``missing_key``, then 428
        ``transaction_running``."""
        epoch, tz = parse_tm(requests.require(body, "TM"))
        self._refuse_during_transaction()
        self._set_time(epoch, tz)
        self._emit("datetime", {"TM": self.meter_tm()})
        return self.get_datetime()

    def get_user(self) -> UserBlock:
        """``GET user`` (§3.7): the block last written this power cycle, else the defaults."""
        return self.user if self.user is not None else UserBlock()

    def post_user(self, body: dict[str, Any]) -> UserBlock:
        """``POST user`` (§3.7): IS, IL, IF (0..4), IT, ID (0..64), US, optional TT (0..250, replaces the
        tariff). Refusal 400 (``missing_key``, ``bad_type``, ``bad_value``), then 428 ``transaction_running``."""
        block = UserBlock(
            IS=requests.flag(body, "IS"),
            IL=requests.text(body, "IL", 0, 32),
            IF=requests.text_list(body, "IF", 4, 32),
            IT=requests.text(body, "IT", 0, 32),
            ID=requests.text(body, "ID", 0, 64),
            US=requests.flag(body, "US"),
            TT=requests.text(body, "TT", 0, 250) if "TT" in body else None,
        )
        self._refuse_during_transaction()
        self.user = block
        if block.TT is not None:
            self.TT = block.TT
        self._emit("user", block.fields())
        return block

    def get_publickey(self) -> PublicKey:
        """``GET publickey`` (§5)."""
        return PublicKey(SIGNATURE_ALGORITHM, self.signer.public_key_hex)

    def live_reading(self) -> LiveReading:
        """``GET metervalue`` (§4), integrated up to now."""
        self._integrate()
        st, ef = self.status()
        tx_import, tx_export = self.registers.transaction_mwh()
        return LiveReading(
            self.serial,
            self.meter_tm(),
            ef,
            st,
            self.transaction is not None,
            self.registers.import_mwh,
            self.registers.export_mwh,
            tx_import,
            tx_export,
            self.current_A,
            self.voltage_V,
            self.status_word(),
            faults.combined_xc(self.faults),
        )

    def post_receipt(self, body: dict[str, Any]) -> ReceiptAnswer:
        """``POST receipt`` (§3.6): B begins, E ends and signs. Refusal 400 ``bad_tx``, 503 ``meter_error``, 428
        ``current_above_threshold``, ``gw_not_set``, ``transaction_running``, ``no_transaction``; ``StorageError``."""
        kind = requests.transaction_kind(body)
        blocking = self._blocking_fault()
        if blocking is not None:
            raise Refusal(503, "meter_error", f"the meter is in error state ({blocking})")
        self._integrate()
        if self.above_threshold():
            raise precondition(
                "current_above_threshold",
                f"current {self.current_A:g} A is above the activation threshold "
                f"{self.switches.activation_threshold_A:g} A",
            )
        if kind == "B":
            self._begin()
        else:
            if self.transaction is None:
                raise precondition("no_transaction", "no transaction is running")
            self._finish("E")
        return ReceiptAnswer(kind, self.transaction is not None)

    def get_receipt(self) -> str:
        """``GET receipt`` (§2): the OCMF record of the last end this power cycle. Refusal 404 ``no_record``, 425
        ``signature_pending`` (switch ``signature_delay_ms``, §6)."""
        if self.last_receipt is None:
            raise Refusal(404, "no_record", "no transaction finished since power-up")
        if self._now() < self._receipt_ready_at:
            raise Refusal(425, "signature_pending", "the record is still being signed")
        return self.last_receipt

    def get_transaction(self) -> str:
        """``GET transaction`` (§2): the last OCMF record, kept across power cycles. Refusal 404 ``no_record``."""
        if self.registers.last_transaction is None:
            raise Refusal(404, "no_record", "this meter never finished a transaction")
        return self.registers.last_transaction

    # ---- transactions ----------------------------------------------------------------------------------

    def _refuse_during_transaction(self) -> None:
        if self.transaction is not None:
            raise precondition("transaction_running", "not allowed while a transaction is running")

    def _reading(self, tx: str, t: float, st: str, ef: str) -> Reading:
        return Reading(self.meter_tm(t), tx, ef, st, energy.format_kwh(self.registers.import_mwh))

    def _begin(self) -> None:
        if self.switches.require_gw_for_transaction and not self.gw_written:
            raise precondition("gw_not_set", "gw was not written since power-up")
        self._refuse_during_transaction()
        t = self._now()
        st, ef = self.status()
        transaction = OpenTransaction(self._reading("B", t, st, ef), self.CT, self.CI, self.get_user(), self.TT)
        self.registers.persist()  # the registers at the begin reading, before B counts (StorageError: no B)
        self.registers.begin_transaction()
        self.transaction = transaction
        self.counters["transactions"] += 1
        self._emit("transaction_begin", {"begin": transaction.begin.TM})

    def _finish(self, reason: str, active: frozenset[str] | None = None) -> SignedRecord:
        """End reading, sign, store the record, and only then change anything: a ``StorageError`` from memory
        leaves the transaction open. ``active``: the faults the end reading shows (a fault being raised)."""
        tx = self.transaction
        assert tx is not None
        t = self._integrate()
        st, ef = self.status(active)
        end = self._reading(reason, t, st, ef)
        registers, profile, user = self.registers, self.profile, tx.user
        content = RecordContent(
            GI=profile.GI,
            GS=self.serial,
            GV=profile.GV,
            MV=profile.MV,
            MM=profile.MM,
            MS=self.serial,
            CT=tx.CT,
            CI=tx.CI,
            IS=user.IS,
            IL=user.IL,
            IF=user.IF,
            IT=user.IT,
            ID=user.ID,
            PG=f"T{registers.next_pagination}",
            TT=tx.TT,
            RD=(tx.begin, end),
        )
        ocmf = sign_record(content, self.signer, self.switches.signature_encoding, self.next_record_fault)
        record = SignedRecord(
            registers.next_pagination,
            reason,
            ocmf,
            self.signer.fingerprint,
            tx.begin.TM,
            end.TM,
            tx.begin.RV,
            end.RV,
            self.signer.public_key_hex,
            registers.import_uj,
            registers.export_uj,
        )
        registers.add_record(record)  # durable first (StorageError: nothing changed); PG advances
        self.next_record_fault = None
        registers.end_transaction()
        self.transaction = None
        self.last_receipt = ocmf
        self._receipt_ready_at = self._now() + self.switches.signature_delay_ms / 1000
        self.counters["signatures"] += 1
        self._emit("transaction_end", {"reason": reason, "pagination": record.pagination})
        return record

    # ---- control plane -----------------------------------------------------------------------------

    def raise_fault(self, name: str) -> None:
        """Raise a fault of the catalogue (meter-api.md §3.8; ``KeyError`` names an unknown one); one that ends
        transactions signs an A record first (``StorageError``: the fault is not raised)."""
        fault = _known_fault(name)
        if name in self.faults:
            return
        self._integrate()
        active = self.faults | {name}
        if fault.mid_transaction is faults.MidTransaction.ABORT and self.transaction is not None:
            self._finish("A", active)  # signed and stored first: a StorageError leaves the fault not raised
        self.faults = active
        self.counters["faults_raised"] += 1
        if fault.mid_transaction is faults.MidTransaction.CLOCK_UNKNOWN:
            self.time_status = "U"
        self._emit("fault_raised", {"fault": name})

    def clear_fault(self, name: str) -> None:
        """Clear a fault (``KeyError`` names an unknown one; clearing one not raised changes nothing)."""
        _known_fault(name)
        if name in self.faults:
            self.faults = self.faults - {name}
            self._emit("fault_cleared", {"fault": name})

    def power_off(self) -> None:
        """Unplug: a running transaction ends with reason P, signed and stored; volatile state goes (§3.9).

        One write either way: the P record (it carries PG and the registers; ``state.json`` follows at the next
        checkpoint) or the state. A ``StorageError`` leaves the meter powered and its transaction open.
        """
        if not self.powered:
            return
        self._integrate()
        if self.transaction is not None:
            self._finish("P")
        else:
            self.registers.persist()
        self.powered = False
        self._emit("power", {"on": False})

    def power_on(self) -> None:
        """Power-up: every volatile thing reset (§3.1)."""
        if self.powered:
            return
        self.powered = True
        self.counters["power_cycles"] += 1
        self._power_up(self._now())
        self._emit("power", {"on": True})

    def set_switches(self, changes: dict[str, Any]) -> None:
        """Validate and apply firmware switches (§6); ValueError names the bad key and changes nothing."""
        self.switches = self.switches.updated(changes)
        self._emit("profile", self.switches.as_dict())

    def set_registers(self, import_mwh: int | None = None, export_mwh: int | None = None) -> None:
        """Put the absolute registers anywhere within their width, e.g. just below the wrap: for test labs only
        (the control API's ``PUT .../registers``; never the meter API). Whole mWh; the part below 1 mWh is zeroed.

        Raises ``Refusal``: 400 ``bad_value`` for a value outside 0 .. 10^14 - 1 mWh, 428 ``transaction_running``
        while a transaction runs (its begin reading and registers would lie), ``StorageError`` when the new
        values cannot be saved (they are saved before they count).
        """
        for name, value in (("import_mWh", import_mwh), ("export_mWh", export_mwh)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < energy.REGISTER_WRAP_MWH
            ):
                raise Refusal(
                    400, "bad_value", f"{name} must be a whole number from 0 to {energy.REGISTER_WRAP_MWH - 1}"
                )
        self._refuse_during_transaction()
        self._integrate()
        self.registers.set_mwh(import_mwh, export_mwh)
        self._emit("registers", {"import_mWh": self.registers.import_mwh, "export_mWh": self.registers.export_mwh})

    def set_next_record_fault(self, kind: str | None) -> None:
        """Make the next signed record faulty in a named way (ocmf.md §5); ValueError names an unknown kind."""
        if kind is not None and kind not in FAULTY_RECORD_KINDS:
            raise ValueError(f"unknown faulty record kind {kind!r}; known: {', '.join(FAULTY_RECORD_KINDS)}")
        self.next_record_fault = kind

    def factory_reset(self) -> None:
        """A new meter in the same slot: new key, zero registers, PG restarts; old records stay listed.

        A running transaction first ends with a P record, signed and stored on its own. The new identity is
        saved before it replaces the old one: a ``StorageError`` there leaves the old key, registers and PG
        (and the P record, which is signed and never lost).
        """
        if self.transaction is not None:
            self._finish("P")
        generation = self.registers.key_generation + 1
        signer = self._new_signer(generation)
        self.registers.reset(self._factory_new(signer, generation))
        self.signer = signer
        self.faults = frozenset()
        self._power_up(self._now())
        self._emit("factory_reset", {"fingerprint": self.signer.fingerprint})

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        """Every state change ends here: it bumps ``state_version`` and tells the listeners."""
        self.state_version += 1
        for listener in self.listeners:
            listener(kind, data)


def _known_fault(name: str) -> faults.Fault:
    try:
        return faults.BY_NAME[name]
    except KeyError:
        raise KeyError(name) from None
