"""Signed records and registers on the control plane: list, S.A.F.E. XML export, faulty next record, factory
reset, and the absolute registers (control-api.md §2).

Users check the twin's records in the official Transparenzsoftware, so the export is its XML container
(ocmf.md §4); archived records (from before a factory reset) carry the key that signed them.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from iemdcr_twin.simulator.control import view
from iemdcr_twin.simulator.control.body import read_valid
from iemdcr_twin.simulator.control.errors import ControlError
from iemdcr_twin.simulator.control.keys import slot_of
from iemdcr_twin.simulator.model import Meter, SignedRecord
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS

log = logging.getLogger("iemdcr.control")
FORMATS = ("json", "safe-xml")
PG_PATTERN = re.compile(r"T(0|[1-9][0-9]{0,9})")
"""``?pg=``: T and a pagination number from 0 to MAX_PG without leading zeros (the OpenAPI document's pattern)."""
MAX_PG = 10**10 - 1
KEY_PATTERN = re.compile(r"[0-9a-f]{16}")
"""``?key=``: a key fingerprint, the first 16 hex digits of SHA-256 over the key, lowercase (ocmf.Signer)."""


def query_once(request: web.Request, name: str) -> str | None:
    """The query parameter ``name``, or None; 400 bad_query naming it when it is given more than once (which
    one would count is a guess the twin does not make)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ControlError(400, "bad_query", f"{name} is given {len(values)} times; give it at most once")
    return values[0] if values else None


def public_key_of(meter: Meter, record: SignedRecord) -> str | None:
    """The key that signed the record: kept with it, or the current key for records of that key."""
    if record.public_key:
        return record.public_key
    if record.key_fingerprint == meter.signer.fingerprint:
        return meter.signer.public_key_hex
    return None


def record_dict(meter: Meter, record: SignedRecord) -> dict[str, Any]:
    return {
        "PG": f"T{record.pagination}",
        "pagination": record.pagination,
        "reason": record.reason,
        "begin": {"TM": record.begin_TM, "RV": record.begin_RV},
        "end": {"TM": record.end_TM, "RV": record.end_RV},
        "fingerprint": record.key_fingerprint,
        "public_key": public_key_of(meter, record),
        "archived": record.key_fingerprint != meter.signer.fingerprint,
        "ocmf": record.ocmf,
    }


def safe_xml(meter: Meter, records: list[SignedRecord]) -> str:
    """The Transparenzsoftware container: ``<values>`` with one bare ``<value>`` per record, in history order.

    Each ``<value>`` holds the record's OCMF string (``signedData format="OCMF" encoding="plain"``, begin and end
    readings in one signed record) and the DER key that signed it (``publicKey encoding="hex"``). It carries no
    ``transactionId`` and no ``context``: the Transparenzsoftware 1.4.1 groups values by ``transactionId``
    (``ValueMapBuilder``) and checks each group as one begin/end pair (``Verifier.verifyTransaction``), so a
    record alone under an id opens as a transaction without a start value, and its command line then reports
    one group only. Values without an id are each verified on their own, every one listed (docs/safe-export.md).
    """
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<values>"]
    for record in records:
        public_key = public_key_of(meter, record) or ""
        lines += [
            "  <value>",
            f'    <signedData format="OCMF" encoding="plain">{escape(record.ocmf)}</signedData>',
            f'    <publicKey encoding="hex">{escape(public_key)}</publicKey>',
            "  </value>",
        ]
    lines.append("</values>")
    return "\n".join(lines) + "\n"


def _select(request: web.Request, meter: Meter) -> list[SignedRecord]:
    records = list(meter.records)
    pg = query_once(request, "pg")  # OCMF PG: "T" and the pagination number
    if pg is not None:
        match = PG_PATTERN.fullmatch(pg)
        if match is None:
            raise ControlError(
                400,
                "bad_query",
                f"pg must be T followed by a pagination number from 0 to {MAX_PG} without leading zeros, e.g. T5;"
                f" got {pg[:20]!r}",
            )
        pagination = int(match.group(1))
        records = [record for record in records if record.pagination == pagination]
    fingerprint = query_once(request, "key")  # the fingerprint of the key that signed
    if fingerprint is not None:
        if KEY_PATTERN.fullmatch(fingerprint) is None:
            raise ControlError(
                400,
                "bad_query",
                "key must be a key fingerprint: 16 lowercase hex digits, e.g. 0123456789abcdef;"
                f" got {fingerprint[:20]!r}",
            )
        records = [record for record in records if record.key_fingerprint == fingerprint]
    if (pg is not None or fingerprint is not None) and not records:
        raise ControlError(404, "unknown_record", "no signed record matches pg/key")
    return records


async def get_records(request: web.Request) -> web.StreamResponse:
    meter = slot_of(request).meter
    fmt = query_once(request, "format")
    fmt = "json" if fmt is None else fmt
    if fmt not in FORMATS:
        raise ControlError(400, "bad_query", f"format must be one of {', '.join(FORMATS)}")
    records = _select(request, meter)
    if fmt == "safe-xml":
        filename = f"{meter.serial}-records.xml"
        return web.Response(
            text=safe_xml(meter, records),
            content_type="application/xml",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )
    return web.json_response(
        {
            "serial": meter.serial,
            "fingerprint": meter.signer.fingerprint,
            "records": [record_dict(meter, record) for record in records],
        }
    )


def _next_record_state(meter: Meter) -> dict[str, Any]:
    return {"next_record_fault": meter.next_record_fault, "kinds": dict(FAULTY_RECORD_KINDS)}


async def get_next_record(request: web.Request) -> web.StreamResponse:
    return web.json_response(_next_record_state(slot_of(request).meter))


async def put_next_record(request: web.Request) -> web.StreamResponse:
    meter = slot_of(request).meter
    body = await read_valid(request, "NextRecord")
    meter.set_next_record_fault(body["kind"])
    return web.json_response(_next_record_state(meter))


async def delete_next_record(request: web.Request) -> web.StreamResponse:
    meter = slot_of(request).meter
    meter.set_next_record_fault(None)
    return web.json_response(_next_record_state(meter))


async def post_factory_reset(request: web.Request) -> web.StreamResponse:
    meter = slot_of(request).meter
    await read_valid(request, "FactoryReset", optional=True)
    old = meter.signer.fingerprint
    history = meter.records  # read first: a damaged record file refuses (503) before anything changed
    meter.factory_reset()
    log.info(
        "factory reset of %s: key %s replaced by %s",
        meter.serial,
        old,
        meter.signer.fingerprint,
        extra={"meter": meter.serial, "old_fingerprint": old, "fingerprint": meter.signer.fingerprint},
    )
    archived = sum(1 for record in history if record.key_fingerprint != meter.signer.fingerprint)
    return web.json_response(
        {
            "serial": meter.serial,
            "fingerprint": meter.signer.fingerprint,
            "public_key": meter.signer.public_key_hex,
            "previous_fingerprint": old,
            "archived_records": archived,
            "pagination": {"next": meter.registers.next_pagination},
        }
    )


async def put_registers(request: web.Request) -> web.StreamResponse:
    """Test labs: start the absolute registers anywhere, e.g. just below the wrap (docs/persistence.md)."""
    slot = slot_of(request)
    body = await read_valid(request, "Registers")
    slot.meter.set_registers(body.get("import_mWh"), body.get("export_mWh"))
    return web.json_response(view.snapshot(slot.meter)["registers"])
