"""The control plane's view of one meter: its full state (``snapshot``) and its display (``display``).

Pure functions over the model's public attributes and methods, for the control API, the live-values stream,
the dashboard and the scenario runner's ``expect_meter`` (control-api.md). ``snapshot`` integrates the energy
up to now (through ``Meter.live_reading``), as any reading of the meter does.
"""

from __future__ import annotations

from typing import Any

from iemdcr_twin.simulator.meter_api import user_body
from iemdcr_twin.simulator.model import Meter
from iemdcr_twin.simulator.model.energy import format_kwh
from iemdcr_twin.simulator.model.faults import combined_xc, worst


def display(meter: Meter) -> list[str]:
    """What the meter's display shows: the XC text in error state, the transaction's import energy (and ID if
    US) during a transaction, else the tariff text (meter-api.md §3.7)."""
    if worst(meter.faults) is not None:
        return ["Error", combined_xc(meter.faults)]
    if meter.transaction is not None:
        tx_import, _ = meter.registers.transaction_mwh()
        lines = [f"{format_kwh(tx_import).lstrip('0').rjust(5, '0')} kWh"]
        if meter.transaction.user.US:
            lines.append(meter.transaction.user.ID)
        return lines
    return [meter.TT] if meter.TT else [""]


def snapshot(meter: Meter) -> dict[str, Any]:
    """The full state as the control API's ``GET /api/meters/{serial}`` body (control-api.md): identity, clock,
    gw, user, tariff, display, electrical values, registers in mWh and kWh, transaction, PG, status, faults."""
    reading = meter.live_reading()
    tx = meter.transaction
    registers = meter.registers
    return {
        "serial": meter.serial,
        "profile": meter.profile.name,
        "model": meter.profile.MM,
        "firmware": meter.profile.GV,
        "rated_current_A": meter.profile.rated_current_A,
        "public_key": meter.signer.public_key_hex,
        "fingerprint": meter.signer.fingerprint,
        "switches": meter.switches.as_dict(),
        "powered": meter.powered,
        "clock": {
            "time": reading.TM if meter.powered else None,
            "offset_minutes": meter.tz_minutes,
            "status": meter.time_status,
        },
        "gw": {"written": meter.gw_written, "CT": meter.CT, "CI": meter.CI},
        "user": None if meter.user is None else user_body(meter.user),
        "tariff": meter.TT,
        "display": display(meter),
        "electrical": {
            "current_A": reading.current_A,
            "voltage_V": reading.voltage_V,
            "power_W": reading.current_A * reading.voltage_V,
            **registers.load_targets(),
        },
        "registers": {
            "import_mWh": reading.import_mwh,
            "export_mWh": reading.export_mwh,
            "import_kWh": format_kwh(reading.import_mwh),
            "export_kWh": format_kwh(reading.export_mwh),
            "transaction_import_mWh": reading.tx_import_mwh,
            "transaction_export_mWh": reading.tx_export_mwh,
        },
        "transaction": None if tx is None else {"begin": tx.begin.TM, "begin_RV": tx.begin.RV, "ID": tx.user.ID},
        "pagination": {"next": registers.next_pagination},
        "status": {"ST": reading.ST, "EF": reading.EF, "XC": reading.XC, "XS": f"0x{reading.XS:016X}"},
        "faults": sorted(meter.faults),
        "next_record_fault": meter.next_record_fault,
        "counters": dict(meter.counters),
    }
