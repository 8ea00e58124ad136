"""The IEM-DCR meter model: every rule of meter-api.md §3, pure and synchronous.

Adapters (the meter API, the control API, the scenario runner) call these methods with plain dicts and get
plain dicts back, or a ``Refusal`` that says why nothing changed. Time comes from an injected ``now``
function (simulation seconds since the epoch); durable memory from an injected ``Memory``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from iemdcr_twin.simulator.model import energy, faults, requests
from iemdcr_twin.simulator.model.errors import Refusal, StorageError, precondition
from iemdcr_twin.simulator.model.memory import Memory, NonVolatile, SignedRecord, reconcile
from iemdcr_twin.simulator.model.profiles import Profile, Switches
from iemdcr_twin.simulator.model.timefmt import format_tm, parse_tm
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS, RecordContent, Signer, UserBlock, sign_record
from iemdcr_twin.simulator.ocmf import Reading as OcmfReading

Listener = Callable[[str, dict[str, Any]], None]
SHUNT_OHM = 0.0001


class LiveReading(NamedTuple):
    """The live values of one ``GET metervalue``; ``*_shown`` are rounded the way the meter shows them."""

    tm: str
    ef: str
    st: str
    xt: bool
    import_mwh: int
    export_mwh: int
    tx_import_mwh: int
    tx_export_mwh: int
    current: float
    voltage: float
    xs: int
    xc: str

    @property
    def current_shown(self) -> float:
        return round(self.current, 3)

    @property
    def voltage_shown(self) -> float:
        return round(self.voltage, 3)

    @property
    def power_shown(self) -> float:
        return round(self.voltage * self.current, 3)

    @property
    def shunt_voltage(self) -> float:
        return round(self.current * SHUNT_OHM, 6)


@dataclass(frozen=True)
class OpenTransaction:
    """What B captured: the begin reading and everything in force at B that the record signs."""

    begin: OcmfReading
    ct: str
    ci: str
    user: UserBlock
    show_id: bool
    tariff: str
    start_import_uj: int
    start_export_uj: int


class Meter:
    """One IEM-DCR: identity, clock, registers, transactions, faults, power."""

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
        self._memory = memory
        self._new_signer = new_signer
        self.listeners: list[Listener] = []
        self.state_version = 0  # bumped by every change of state (not by time passing)
        self.faults: frozenset[str] = frozenset()
        self.next_record_fault: str | None = None
        self.counters = {"transactions": 0, "signatures": 0, "faults_raised": 0, "power_cycles": 0}
        t = now()
        self._current = energy.Ramp.constant(0.0, t)
        self._voltage = energy.Ramp.constant(0.0, t)
        self._integrated_to = t
        self.powered = True
        self._restore()
        self._power_up(t)

    # ---- non-volatile memory -------------------------------------------------------------------------

    @property
    def records(self) -> list[SignedRecord]:
        """Every signed record, in signing order; read from memory on first use, so start-up does not wait."""
        if self._history is None:
            self._history = self._memory.history()
        return self._history

    def _restore(self) -> None:
        state = self._memory.load()
        if state is None:
            signer = self._new_signer(0)
            state = NonVolatile(
                self.serial, self.profile.name, signer.to_pem(), 0, 0, 0, self.profile.first_pagination, None
            )
            self._memory.save(state)  # the key is durable before anything is signed with it
            saved = state
        else:
            signer = Signer.from_pem(state.key_pem)
            recent = self._memory.records_since(signer.fingerprint, state.next_pagination)
            saved, state = state, reconcile(state, recent, signer.fingerprint)
            if state != saved:
                # The records hold the repair; writing it back may wait for the next checkpoint (a full disk).
                with contextlib.suppress(StorageError):
                    self._memory.save(state)
                    saved = state
        self.signer = signer
        self._key_pem = state.key_pem  # serialised once: a checkpoint after every clock jump must stay cheap
        self._history: list[SignedRecord] | None = None  # read from memory when first asked for
        self.import_uj = state.import_uj
        self.export_uj = state.export_uj
        self.next_pagination = state.next_pagination
        self.last_transaction = state.last_transaction
        self._key_generation = state.key_generation
        self._saved = saved

    def _nonvolatile(self) -> NonVolatile:
        return NonVolatile(
            self.serial,
            self.profile.name,
            self._key_pem,
            self._key_generation,
            self.import_uj,
            self.export_uj,
            self.next_pagination,
            self.last_transaction,
        )

    def _persist(self) -> None:
        """Save the non-volatile state if it changed; raises ``StorageError`` (then nothing counts as saved)."""
        state = self._nonvolatile()
        if state != self._saved:
            self._memory.save(state)
            self._saved = state

    def checkpoint(self) -> bool:
        """Persist the registers if they moved; adapters call this every few seconds, after every clock jump and
        at shutdown (docs/persistence.md). Returns whether it wrote; raises ``StorageError`` when the write
        failed (the next checkpoint tries again)."""
        self._integrate()
        before = self._saved
        self._persist()
        return self._saved is not before

    def _power_up(self, t: float) -> None:
        """Reset every volatile thing (meter-api.md §3.1)."""
        self.gw_written = False
        self.ct = ""
        self.ci = ""
        self._time_written: float | None = None  # the written epoch...
        self._time_written_at = 0.0  # ...and the simulation time it was written at
        self._tz_minutes = 0
        self.time_status = "U"
        self.tariff = ""
        self.user: dict[str, Any] | None = None
        self._user_block = UserBlock()
        self._show_id = False
        self.last_receipt: str | None = None
        self._receipt_ready_at = 0.0
        self.transaction: OpenTransaction | None = None
        self._tx_import_mwh = 0
        self._tx_export_mwh = 0
        self._integrated_to = t

    # ---- time and energy -------------------------------------------------------------------------------

    def _integrate(self) -> float:
        t = self._now()
        if self.powered and t > self._integrated_to:
            rated = self.profile.rated_current_A
            imported, exported = energy.integrate(self._current, self._voltage, rated, self._integrated_to, t)
            self.import_uj = energy.wrap_uj(self.import_uj + energy.joules_to_uj(imported))
            self.export_uj = energy.wrap_uj(self.export_uj + energy.joules_to_uj(exported))
        self._integrated_to = max(self._integrated_to, t)
        return t

    def meter_tm(self, t: float | None = None) -> str:
        """Meter time with its status letter."""
        t = self._now() if t is None else t
        moment = t if self._time_written is None else self._time_written + (t - self._time_written_at)
        return f"{format_tm(moment, self._tz_minutes)} {self.time_status}"

    def _set_time(self, epoch: float, tz_minutes: int) -> None:
        self._time_written, self._time_written_at = epoch, self._now()
        self._tz_minutes = tz_minutes
        self.time_status = self.switches.time_status_after_set

    @property
    def current_A(self) -> float:
        return energy.saturate(self._current.at(self._now()), self.profile.rated_current_A)

    @property
    def voltage_V(self) -> float:
        return self._voltage.at(self._now())

    def set_load(self, current_A: float | None = None, voltage_V: float | None = None, ramp_s: float = 0.0) -> None:
        """Change the electrical inputs, optionally ramped linearly over ``ramp_s`` simulated seconds."""
        t = self._integrate()
        if current_A is not None:
            self._current = energy.Ramp(self._current.at(t), current_A, t, t + ramp_s)
        if voltage_V is not None:
            self._voltage = energy.Ramp(self._voltage.at(t), voltage_V, t, t + ramp_s)
        self._emit("load", {"current_A": current_A, "voltage_V": voltage_V, "ramp_s": ramp_s})

    def load_targets(self) -> dict[str, float]:
        return {
            "target_current_A": self._current.end,
            "target_voltage_V": self._voltage.end,
            "ramp_until": max(self._current.t1, self._voltage.t1),
        }

    @property
    def import_mwh(self) -> int:
        return energy.uj_to_mwh(self.import_uj)

    @property
    def export_mwh(self) -> int:
        return energy.uj_to_mwh(self.export_uj)

    def transaction_mwh(self) -> tuple[int, int]:
        """Transaction import/export since the last B (frozen after E, zero after power-up), across a wrap of
        the absolute registers too."""
        tx = self.transaction
        if tx is None:
            return self._tx_import_mwh, self._tx_export_mwh
        return (
            energy.uj_to_mwh(energy.register_delta(tx.start_import_uj, self.import_uj)),
            energy.uj_to_mwh(energy.register_delta(tx.start_export_uj, self.export_uj)),
        )

    # ---- status --------------------------------------------------------------------------------------

    def _status(self, active: frozenset[str] | None = None) -> tuple[str, str]:
        """ST and EF of the most severe active fault (of ``active`` when given: a fault being raised)."""
        fault = faults.worst(self.faults if active is None else active)
        return ("G", "") if fault is None else (fault.st, fault.ef)

    def _blocking_fault(self) -> str | None:
        for fault in faults.CATALOGUE:
            if fault.name in self.faults and fault.blocks_receipts:
                return fault.name
        return None

    def above_threshold(self) -> bool:
        return abs(self.current_A) > self.switches.activation_threshold_A

    def status_word(self) -> int:
        bits = faults.fault_bits(self.faults)
        bits |= 1 if self.transaction else 0
        bits |= 2 if self.gw_written else 0
        bits |= 4 if self.time_status != "U" else 0
        bits |= 8 if self.above_threshold() else 0
        return bits

    # ---- meter API -----------------------------------------------------------------------------------

    def get_gw(self) -> dict[str, Any]:
        return {"CT": self.ct, "CI": self.ci, "TM": self.meter_tm()}

    def post_gw(self, body: dict[str, Any]) -> dict[str, Any]:
        ct = requests.text(body, "CT", 1, 64)
        ci = requests.text(body, "CI", 1, 64)
        epoch, tz = parse_tm(requests.require(body, "TM"))
        if self.gw_written:
            raise precondition("gw_already_set", "gw was already written in this power cycle")
        self.ct, self.ci, self.gw_written = ct, ci, True
        self._set_time(epoch, tz)
        self._emit("gw", {"CT": ct, "CI": ci})
        return self.get_gw()

    def get_tariff(self) -> dict[str, Any]:
        return {"TT": self.tariff}

    def post_tariff(self, body: dict[str, Any]) -> dict[str, Any]:
        tariff = requests.text(body, "TT", 0, 250)
        self._refuse_during_transaction()
        self.tariff = tariff
        self._emit("tariff", {"TT": tariff})
        return self.get_tariff()

    def get_datetime(self) -> dict[str, Any]:
        return {"TM": self.meter_tm()}

    def post_datetime(self, body: dict[str, Any]) -> dict[str, Any]:
        epoch, tz = parse_tm(requests.require(body, "TM"))
        self._refuse_during_transaction()
        self._set_time(epoch, tz)
        self._emit("datetime", {"TM": self.meter_tm()})
        return self.get_datetime()

    def get_user(self) -> dict[str, Any]:
        return (
            dict(self.user)
            if self.user is not None
            else {"IS": False, "IL": "NONE", "IF": [], "IT": "NONE", "ID": "", "US": False}
        )

    def post_user(self, body: dict[str, Any]) -> dict[str, Any]:
        block = {
            "IS": requests.flag(body, "IS"),
            "IL": requests.text(body, "IL", 0, 32),
            "IF": list(requests.text_list(body, "IF", 4, 32)),
            "IT": requests.text(body, "IT", 0, 32),
            "ID": requests.text(body, "ID", 0, 64),
            "US": requests.flag(body, "US"),
        }
        tariff = requests.text(body, "TT", 0, 250, required=False) if "TT" in body else None
        if tariff is not None:
            block["TT"] = tariff
        self._refuse_during_transaction()
        self.user = block
        self._user_block = UserBlock(block["IS"], block["IL"], tuple(block["IF"]), block["IT"], block["ID"])
        self._show_id = block["US"]
        if tariff is not None:
            self.tariff = tariff
        self._emit("user", block)
        return dict(block)

    def get_publickey(self) -> dict[str, Any]:
        return {"SA": "ECDSA-secp256r1-SHA256", "PK": self.signer.public_key_hex}

    def live_reading(self) -> LiveReading:
        """What ``GET metervalue`` shows, as plain values (the meter API renders them straight to bytes)."""
        self._integrate()
        st, ef = self._status()
        tx_import, tx_export = self.transaction_mwh()
        return LiveReading(
            self.meter_tm(),
            ef,
            st,
            self.transaction is not None,
            self.import_mwh,
            self.export_mwh,
            tx_import,
            tx_export,
            self.current_A,
            self.voltage_V,
            self.status_word(),
            faults.combined_xc(self.faults),
        )

    def get_metervalue(self) -> dict[str, Any]:
        r = self.live_reading()
        return {
            "MS": self.serial,
            "TM": r.tm,
            "EF": r.ef,
            "ST": r.st,
            "XT": r.xt,
            "RD": [
                {"RV": energy.format_kwh(r.import_mwh), "RI": "1-b:1.8.e", "RU": "kWh", "RT": "DC"},
                {"RV": energy.format_kwh(r.export_mwh), "RI": "1-b:2.8.e", "RU": "kWh", "RT": "DC"},
                {"WV": energy.format_kwh(r.tx_import_mwh), "WI": "transaction_1-b:1.8.e", "WU": "kWh", "WT": "DC"},
                {"WV": energy.format_kwh(r.tx_export_mwh), "WI": "transaction_1-b:2.8.e", "WU": "kWh", "WT": "DC"},
            ],
            "U1": r.shunt_voltage,
            "U2": r.voltage_shown,
            "U3": 0,
            "U4": 0,
            "I": r.current_shown,
            "P": r.power_shown,
            "XS": f"0x{r.xs:016X}",
            "XC": r.xc,
        }

    def post_receipt(self, body: dict[str, Any]) -> dict[str, Any]:
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
        return {"TX": kind, "XT": self.transaction is not None}

    def get_receipt(self) -> str:
        if self.last_receipt is None:
            raise Refusal(404, "no_record", "no transaction finished since power-up")
        if self._now() < self._receipt_ready_at:
            raise Refusal(425, "signature_pending", "the record is still being signed")
        return self.last_receipt

    def get_transaction(self) -> str:
        if self.last_transaction is None:
            raise Refusal(404, "no_record", "this meter never finished a transaction")
        return self.last_transaction

    # ---- transactions ----------------------------------------------------------------------------------

    def _refuse_during_transaction(self) -> None:
        if self.transaction is not None:
            raise precondition("transaction_running", "not allowed while a transaction is running")

    def _reading(self, tx: str, t: float, st: str, ef: str) -> OcmfReading:
        return OcmfReading(self.meter_tm(t), tx, ef, st, energy.format_kwh(self.import_mwh))

    def _begin(self) -> None:
        if self.switches.require_gw_for_transaction and not self.gw_written:
            raise precondition("gw_not_set", "gw was not written since power-up")
        self._refuse_during_transaction()
        t = self._now()
        st, ef = self._status()
        transaction = OpenTransaction(
            begin=self._reading("B", t, st, ef),
            ct=self.ct,
            ci=self.ci,
            user=self._user_block,
            show_id=self._show_id,
            tariff=self.tariff,
            start_import_uj=self.import_uj,
            start_export_uj=self.export_uj,
        )
        self._persist()  # the registers at the begin reading, before B counts (StorageError: B does not begin)
        self.transaction = transaction
        self.counters["transactions"] += 1
        self._emit("transaction_begin", {"begin": self.transaction.begin.tm})

    def _finish(self, reason: str, active: frozenset[str] | None = None) -> SignedRecord:
        """End reading, sign, store the record, and only then change anything: a ``StorageError`` from memory
        leaves the transaction open. ``active``: the faults the end reading shows (a fault being raised)."""
        tx = self.transaction
        assert tx is not None
        t = self._integrate()
        st, ef = self._status(active)
        end = self._reading(reason, t, st, ef)
        content = RecordContent(
            gateway_id=self.profile.gateway_id,
            serial=self.serial,
            firmware=self.profile.firmware,
            vendor=self.profile.vendor,
            model=self.profile.model,
            ct=tx.ct,
            ci=tx.ci,
            user=tx.user,
            pagination=self.next_pagination,
            tariff=tx.tariff,
            begin=tx.begin,
            end=end,
        )
        ocmf = sign_record(content, self.signer, self.switches.signature_encoding, self.next_record_fault)
        record = SignedRecord(
            self.next_pagination,
            reason,
            ocmf,
            self.signer.fingerprint,
            tx.begin.tm,
            end.tm,
            tx.begin.rv,
            end.rv,
            self.signer.public_key_hex,
            self.import_uj,
            self.export_uj,
        )
        self._memory.add_record(record)  # durable: PG, the record and the registers (reconcile reads them back)
        if self._history is not None:  # else memory has it for when the history is first read
            self._history.append(record)
        self.next_pagination += 1
        self.last_transaction = ocmf
        self.next_record_fault = None
        self._tx_import_mwh, self._tx_export_mwh = self.transaction_mwh()
        self.transaction = None
        self.last_receipt = ocmf
        self._receipt_ready_at = self._now() + self.switches.signature_delay_ms / 1000
        self.counters["signatures"] += 1
        self._emit("transaction_end", {"reason": reason, "pagination": record.pagination})
        return record

    # ---- control plane -----------------------------------------------------------------------------

    def raise_fault(self, name: str) -> None:
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
        _known_fault(name)
        if name in self.faults:
            self.faults = self.faults - {name}
            self._emit("fault_cleared", {"fault": name})

    def power_off(self) -> None:
        """Unplug: a running transaction ends with reason P, signed and stored; volatile state goes.

        One write either way: the P record (it carries PG and the registers; ``state.json`` follows at the next
        checkpoint) or the state. A ``StorageError`` leaves the meter powered and its transaction open.
        """
        if not self.powered:
            return
        self._integrate()
        if self.transaction is not None:
            self._finish("P")
        else:
            self._persist()
        self.powered = False
        self._emit("power", {"on": False})

    def power_on(self) -> None:
        if self.powered:
            return
        self.powered = True
        self.counters["power_cycles"] += 1
        self._power_up(self._now())
        self._emit("power", {"on": True})

    def set_switches(self, changes: dict[str, Any]) -> None:
        """Validate and apply firmware switches; ValueError names the bad key and changes nothing."""
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
        old = self.import_uj, self.export_uj
        if import_mwh is not None:
            self.import_uj = import_mwh * energy.UJ_PER_MWH
        if export_mwh is not None:
            self.export_uj = export_mwh * energy.UJ_PER_MWH
        try:
            self._persist()
        except StorageError:
            self.import_uj, self.export_uj = old
            raise
        self._emit("registers", {"import_mWh": self.import_mwh, "export_mWh": self.export_mwh})

    def set_next_record_fault(self, kind: str | None) -> None:
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
        generation = self._key_generation + 1
        signer = self._new_signer(generation)
        state = NonVolatile(
            self.serial, self.profile.name, signer.to_pem(), generation, 0, 0, self.profile.first_pagination, None
        )
        self._memory.save(state)
        self._saved = state
        self._key_generation, self.signer, self._key_pem = generation, signer, state.key_pem
        self.import_uj = self.export_uj = 0
        self.next_pagination = self.profile.first_pagination
        self.last_transaction = None
        self.faults = frozenset()
        self._power_up(self._now())
        self._emit("factory_reset", {"fingerprint": self.signer.fingerprint})

    def display(self) -> list[str]:
        """What the meter's display shows: tariff while idle, energy (and ID if US) during a transaction."""
        if self._blocking_fault() or faults.worst(self.faults):
            return ["Error", faults.combined_xc(self.faults)]
        if self.transaction is not None:
            tx_import, _ = self.transaction_mwh()
            lines = [f"{energy.format_kwh(tx_import).lstrip('0').rjust(5, '0')} kWh"]
            if self.transaction.show_id:
                lines.append(self.transaction.user.id_data)
            return lines
        return [self.tariff] if self.tariff else [""]

    def snapshot(self) -> dict[str, Any]:
        """The full state for the control API and the dashboard."""
        self._integrate()
        tx_import, tx_export = self.transaction_mwh()
        st, ef = self._status()
        tx = self.transaction
        return {
            "serial": self.serial,
            "profile": self.profile.name,
            "model": self.profile.model,
            "firmware": self.profile.firmware,
            "rated_current_A": self.profile.rated_current_A,
            "public_key": self.signer.public_key_hex,
            "fingerprint": self.signer.fingerprint,
            "switches": self.switches.as_dict(),
            "powered": self.powered,
            "clock": {
                "time": self.meter_tm() if self.powered else None,
                "offset_minutes": self._tz_minutes,
                "status": self.time_status,
            },
            "gw": {"written": self.gw_written, "CT": self.ct, "CI": self.ci},
            "user": self.user,
            "tariff": self.tariff,
            "display": self.display(),
            "electrical": {
                "current_A": self.current_A,
                "voltage_V": self.voltage_V,
                "power_W": self.current_A * self.voltage_V,
                **self.load_targets(),
            },
            "registers": {
                "import_mWh": self.import_mwh,
                "export_mWh": self.export_mwh,
                "import_kWh": energy.format_kwh(self.import_mwh),
                "export_kWh": energy.format_kwh(self.export_mwh),
                "transaction_import_mWh": tx_import,
                "transaction_export_mWh": tx_export,
            },
            "transaction": None
            if tx is None
            else {"begin": tx.begin.tm, "begin_RV": tx.begin.rv, "ID": tx.user.id_data},
            "pagination": {"next": self.next_pagination},
            "status": {
                "ST": st,
                "EF": ef,
                "XC": faults.combined_xc(self.faults),
                "XS": f"0x{self.status_word():016X}",
            },
            "faults": sorted(self.faults),
            "next_record_fault": self.next_record_fault,
            "counters": dict(self.counters),
        }

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
