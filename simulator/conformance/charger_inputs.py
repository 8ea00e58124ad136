"""What strict OCMF verifiers say about the values a charger fed the driver (CT, IL, IF, IT, ID).

These mirror pyocmf 0.6.0's strict mode (``pyocmf/enums/identifiers.py`` and ``pyocmf/types/identifiers.py``)
without importing it: pyocmf is the independent judge in the tests, which check that both agree. The meter
stores these values faithfully, so problems here are the charger's inputs, reported as WARN, never FAIL.
"""

from __future__ import annotations

import re
from typing import Any

CHARGE_POINT_TYPES = frozenset({"EVSEID", "CBIDC"})
IDENTIFICATION_LEVELS = frozenset(
    {"NONE", "HEARSAY", "TRUSTED", "VERIFIED", "CERTIFIED", "SECURE", "MISMATCH", "INVALID", "OUTDATED", "UNKNOWN"}
)
# Levels that make check_eichrecht refuse the record: not billable.
UNBILLABLE_LEVELS = frozenset({"MISMATCH", "INVALID", "OUTDATED", "UNKNOWN"})
IDENTIFICATION_FLAGS = frozenset(
    {
        "RFID_NONE",
        "RFID_PLAIN",
        "RFID_RELATED",
        "RFID_PSK",
        "OCPP_NONE",
        "OCPP_RS",
        "OCPP_AUTH",
        "OCPP_RS_TLS",
        "OCPP_AUTH_TLS",
        "OCPP_CACHE",
        "OCPP_WHITELIST",
        "OCPP_CERTIFIED",
        "ISO15118_NONE",
        "ISO15118_PNC",
        "PLMN_NONE",
        "PLMN_RING",
        "PLMN_SMS",
    }
)
IDENTIFICATION_TYPES = frozenset(
    {
        "NONE",
        "DENIED",
        "UNDEFINED",
        "ISO14443",
        "ISO15693",
        "EMAID",
        "EVCCID",
        "EVCOID",
        "ISO7812",
        "CARD_TXN_NR",
        "CENTRAL",
        "CENTRAL_1",
        "CENTRAL_2",
        "LOCAL",
        "LOCAL_1",
        "LOCAL_2",
        "PHONE_NUMBER",
        "KEY_CODE",
    }
)
# ID formats per IT; types not listed (LOCAL, CENTRAL, KEY_CODE, ...) accept any ID.
ID_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "ISO14443": (re.compile(r"[0-9a-fA-F]{8}|[0-9a-fA-F]{14}"), "8 or 14 hex digits (4 or 7 byte UID)"),
    "ISO15693": (re.compile(r"[0-9a-fA-F]{16}"), "16 hex digits (8 byte UID)"),
    "EMAID": (re.compile(r"[A-Za-z0-9]{14,15}"), "14-15 letters or digits"),
    "EVCCID": (re.compile(r"[0-9a-fA-F]{1,12}"), "1-12 hex digits"),
    "EVCOID": (re.compile(r"[A-Z]{2,3}-[A-Z0-9]{2,3}-[0-9]{6}-[0-9]"), "DIN 91286, e.g. NL-TNM-012204-5"),
    "ISO7812": (re.compile(r"[0-9]{8,19}"), "8-19 digits"),
    # pyocmf parses phone numbers with the phonenumbers library; this is the E.164 shape it accepts.
    "PHONE_NUMBER": (re.compile(r"\+[1-9][0-9]{6,14}"), "an E.164 number such as +4930123456"),
}


def ct_problem(ct: Any) -> str | None:
    """Why a CT is not one strict verifiers accept, or None."""
    if isinstance(ct, str) and ct in CHARGE_POINT_TYPES:
        return None
    return f"CT {ct!r} is not EVSEID or CBIDC; strict OCMF verifiers reject the record"


def id_problem(it: Any, ident: Any) -> str | None:
    """Why the IT/ID pair fails strict verification, or None (an empty ID is not checked, as in pyocmf)."""
    if not isinstance(it, str) or not isinstance(ident, str) or not ident:
        return None
    rule = ID_FORMATS.get(it)
    if rule is None or rule[0].fullmatch(ident):
        return None
    return f"ID {ident!r} does not match IT {it}: expected {rule[1]}; strict OCMF verifiers reject the record"


def level_problem(il: Any) -> str | None:
    """Why IL makes the record not billable, or None."""
    if isinstance(il, str) and il.strip() in UNBILLABLE_LEVELS:
        note = " (EVerest sends UNKNOWN when the charger gives no level)" if il.strip() == "UNKNOWN" else ""
        return f"IL {il!r} is an error level: check_eichrecht refuses the record, it is not billable{note}"
    return None


def enum_problems(block: dict[str, Any]) -> list[str]:
    """Values of IL, IF and IT that are not OCMF enum members (or carry whitespace), as strict mode sees them."""
    problems: list[str] = []
    il = block.get("IL")
    if isinstance(il, str) and il not in IDENTIFICATION_LEVELS:
        problems.append(f"IL {il!r} is not an OCMF identification level")
    flags = block.get("IF")
    if isinstance(flags, list):
        problems.extend(
            f"IF {flag!r} is not an OCMF identification flag"
            for flag in flags
            if not (isinstance(flag, str) and flag in IDENTIFICATION_FLAGS)
        )
    it = block.get("IT")
    if isinstance(it, str) and it not in IDENTIFICATION_TYPES:
        problems.append(f"IT {it!r} is not an OCMF identification type")
    return problems
