"""JSON Schemas (draft 2020-12) of what clients and files give the twin: the control API's request bodies, the
firmware switches and network-fault rules they share, and the fleet file. The one place their ranges and rules
are written: the control plane validates bodies with them (``control/body.py``), ``network_faults.parse_rules``
and ``fleet_file`` check with them, and the control API's OpenAPI document is generated from them
(``control/openapi.py``). The scenario format has its own published schema (``scenario/schema.json``), which
holds the same switches and rules (tests keep them equal).

Validation differs from Python's jsonschema defaults in two ways, both as the published schemas mean them:
``number`` and ``integer`` are finite (Python's JSON reader takes ``NaN`` and ``Infinity``, which are no JSON
numbers), and ``pattern`` is an ECMA-262 regular expression whose ``$`` ends the text (Python's ``$`` also
matches before a final newline). An ``integer`` may be written ``5.0``, as JSON Schema says; ``whole_numbers``
hands it on as the int 5.

The control API's error codes come from the failing keyword (``problem``): ``additionalProperties`` is
``unknown_key``, ``type`` ``bad_type``, ``required`` ``missing_key``, every range, enum or pattern
``bad_value``. A schema node may say otherwise with annotations that the published documents leave out
(``public``): ``x-codes`` (keyword -> code; ``"null"``: a type error on a ``null``), ``x-code`` (every error at
or under the node), ``x-message`` (what the value must be, instead of a phrase made from the schema, or a
mapping keyword -> phrase) and ``x-known`` (the error body lists the accepted values as ``known``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.protocols import Validator

from iemdcr_twin.simulator.model.faults import CATALOGUE as FAULT_CATALOGUE
from iemdcr_twin.simulator.model.profiles import (
    BOOL_SWITCHES,
    INT_SWITCHES,
    MAX_ACTIVATION_THRESHOLD_A,
    MAX_SWITCH_MS,
    PROFILES,
    SWITCH_CHOICES,
    SWITCH_NAMES,
)
from iemdcr_twin.simulator.ocmf import FAULTY_RECORD_KINDS

Schema = dict[str, Any]
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# ---- vocabulary shared with the code that acts on it ----------------------------------------------------

FAULT_NAMES = tuple(fault.name for fault in FAULT_CATALOGUE)
NETWORK_ACTIONS = ("delay", "status", "hang", "reset", "malformed", "refuse")
MAX_RULES = 100
MAX_DELAY_MS = 86_400_000
MAX_REGISTER_MWH = 10**14 - 1  # the registers wrap at 10^14 mWh (meter-api.md §3.4)
MAX_ADVANCE_S = 10 * 365 * 86_400
MAX_CLOCK_RATE = 1_000_000
MAX_METERS = 10_000
SERIAL_PATTERN = "^1ISA[0-9]{10}$"


def _number(low: float, high: float, *, null: bool = False, **extra: Any) -> Schema:
    return {"type": ["number", "null"] if null else "number", "minimum": low, "maximum": high, **extra}


def _object(properties: dict[str, Schema], *, required: Iterable[str] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return {**schema, **extra}


def _switch(name: str) -> Schema:
    if name in BOOL_SWITCHES:
        return {"type": "boolean"}
    if name in INT_SWITCHES:
        return {"type": "integer", "minimum": 0, "maximum": MAX_SWITCH_MS}
    if name in SWITCH_CHOICES:
        return {"enum": list(SWITCH_CHOICES[name])}
    return {"type": "number", "minimum": 0, "maximum": MAX_ACTIVATION_THRESHOLD_A}


SWITCH_PROPERTIES: dict[str, Schema] = {name: _switch(name) for name in SWITCH_NAMES}
"""Each firmware switch's value (meter-api.md §6; the rules: ``model/profiles.py``)."""

SWITCHES: Schema = _object(
    SWITCH_PROPERTIES,
    description="firmware switches by name (meter-api.md §6); those not given keep their value",
)


def _only_for(action: str) -> Schema:
    text = f"only applies to action {action}"
    return {"not": {}, "description": text, "x-message": text}


NETWORK_RULE: Schema = _object(
    {
        "action": {"enum": list(NETWORK_ACTIONS), "x-codes": {"required": "bad_value"}},
        "method": {
            "type": "string",
            "pattern": "^[A-Za-z]{1,16}$",
            "description": "only requests with this HTTP method (any case)",
            "x-code": "bad_value",
            "x-message": "an HTTP method such as GET or POST",
        },
        "path": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "fnmatch glob against the request path or the node name",
            "x-code": "bad_value",
            "x-message": "a glob of 1 to 200 characters",
        },
        "delay_ms": _number(0, MAX_DELAY_MS, description="action delay: how long, in simulated ms"),
        "status": {
            "type": "integer",
            "minimum": 200,
            "maximum": 599,
            "description": "action status: the status answered",
            "x-code": "bad_value",
        },
        "count": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1_000_000_000,
            "description": "spent per applied request; the rule goes at 0 (absent: unlimited)",
            "x-code": "bad_value",
        },
        "probability": _number(0, 1, description="the chance that a matching request is hit (seeded)"),
    },
    required=["action"],
    allOf=[
        {
            "if": {"properties": {"action": {"const": "delay"}}, "required": ["action"]},
            "then": {"required": ["delay_ms"], "x-message": "is required for action delay"},
            "else": {"properties": {"delay_ms": _only_for("delay")}},
        },
        {
            "if": {"properties": {"action": {"const": "status"}}, "required": ["action"]},
            "then": {
                "required": ["status"],
                "x-codes": {"required": "bad_value"},
                "x-message": "is required for action status",
            },
            "else": {"properties": {"status": _only_for("status")}},
        },
    ],
    description="one network-fault rule: the first rule that matches a meter-API request applies",
)

NETWORK_RULES: Schema = _object(
    {
        "seed": {
            "type": ["integer", "string"],
            "maxLength": 200,
            "description": "seeds the random source of the rules' probability (default 0)",
            "x-codes": {"maxLength": "bad_type"},
            "x-message": "an integer or a string of at most 200 characters",
        },
        "rules": {
            "type": "array",
            "maxItems": MAX_RULES,
            "items": NETWORK_RULE,
            "x-codes": {"required": "bad_type"},
            "x-message": {"type": "a list of rule objects", "required": "a list of rule objects"},
        },
    },
    required=["rules"],
)
"""``PUT /api/meters/{serial}/network`` (control-api.md §2) and a scenario's ``fault: {network: ...}``."""

# ---- the control API's request bodies (control-api.md §2) ------------------------------------------------

CONTROL_BODIES: dict[str, Schema] = {
    "Load": _object(
        {
            "current_A": _number(
                -100_000, 100_000, null=True, description="A, negative for export; absent or null: unchanged"
            ),
            "voltage_V": _number(
                0, 10_000, null=True, description="V, at least 0 (a DC meter's voltage); absent or null: unchanged"
            ),
            "ramp_s": _number(0, 31_536_000, null=True, description="seconds of simulated time (default 0)"),
        }
    ),
    "Switches": {**SWITCHES, "x-code": "bad_switch"},
    "Power": _object({"on": {"type": "boolean", "x-codes": {"required": "bad_type"}}}, required=["on"]),
    "PowerCycle": _object({"off_ms": _number(0, 86_400_000, null=True, description="simulated ms off (default 0)")}),
    "Registers": _object(
        {
            name: {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_REGISTER_MWH,
                "description": "whole mWh; absent or null: unchanged",
                "x-codes": {"type": "bad_value"},
            }
            for name in ("import_mWh", "export_mWh")
        }
    ),
    "Fault": {
        "type": "object",
        "additionalProperties": True,
        "description": "optional; its keys are ignored (the fault is named by the path)",
    },
    "NetworkRules": NETWORK_RULES,
    "NextRecord": _object(
        {
            "kind": {
                "enum": list(FAULTY_RECORD_KINDS),
                "description": "the faulty-record kind (ocmf.md §5)",
                "x-codes": {"required": "bad_value"},
                "x-message": "a faulty record kind",
                "x-known": True,
            }
        },
        required=["kind"],
    ),
    "ClockSetting": _object(
        {
            "mode": {"enum": ["real", "virtual", None], "x-code": "bad_mode", "description": "absent or null: kept"},
            "rate": _number(0, MAX_CLOCK_RATE, null=True, description="simulated seconds per second (virtual)"),
        }
    ),
    "Advance": _object(
        {
            "seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_ADVANCE_S,
                "x-codes": {"required": "bad_value", "null": "bad_value"},
            }
        },
        required=["seconds"],
    ),
    "FactoryReset": _object({}, description="optional; no keys"),
}
"""Every control request body by its OpenAPI component name."""

# ---- the fleet file (``iemdcr-sim serve --fleet``) -------------------------------------------------------

_METERS: Schema = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_METERS,
    "items": {"$ref": "#/$defs/meter"},
    "x-message": {"maxItems": f"may hold at most {MAX_METERS} meters", "*": "must be a non-empty list of meters"},
}
FLEET: Schema = {
    "$schema": DIALECT,
    "title": "iemdcr-twin fleet file",
    "description": "The meters of `iemdcr-sim serve --fleet FILE` (YAML): a list of meters, or a mapping with the "
    "single key meters. Ports and serials must differ between meters.",
    "$defs": {
        "meter": _object(
            {
                "port": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 65535,
                    "description": "the meter API's port; 0 picks a free one",
                    "x-message": "must be a port number from 0 to 65535 (0 picks a free port)",
                },
                "serial": {
                    "type": "string",
                    "pattern": SERIAL_PATTERN,
                    "description": "default: the profile's serial plus the meter's index",
                    "x-message": {
                        "type": "must be a string such as '1ISA0200000001' (quote it)",
                        "pattern": "must be 1ISA followed by 10 digits (ASCII digits 0-9)",
                    },
                },
                "profile": {"enum": sorted(PROFILES), "description": "default: --profile"},
                "switches": {
                    **SWITCHES,
                    "x-message": {"type": "must be a mapping of switch names to values"},
                },
            },
            required=["port"],
            **{"x-message": {"type": "must be a mapping with port, profile, serial and switches"}},
        ),
        "meters": _METERS,
    },
    "if": {"type": "array"},
    "then": {"$ref": "#/$defs/meters"},
    "else": _object(
        {"meters": {"$ref": "#/$defs/meters"}},
        required=["meters"],
        **{"x-message": {"type": "must be a list of meters or a mapping with the key meters"}},
    ),
}
"""The fleet file (a list of meters, or ``{"meters": [...]}``); ``fleet_file`` checks duplicates itself."""


# ---- validation ------------------------------------------------------------------------------------------


def _is_number(checker: Any, instance: Any) -> bool:
    if isinstance(instance, float):
        return math.isfinite(instance)
    return isinstance(instance, int) and not isinstance(instance, bool)  # any int (isfinite would overflow)


def _is_integer(checker: Any, instance: Any) -> bool:
    if isinstance(instance, float):  # 5.0 is the number 5 (JSON Schema); whole_numbers makes it an int
        return math.isfinite(instance) and instance.is_integer()
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern as ECMA-262 reads it, in Python: a final ``$`` is the end of the text (``\\Z``).

    Only a final ``$`` is translated; every pattern in our schemas keeps ``$`` there (tests check).
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Schema) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer})
StrictValidator: type[Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _pattern}, type_checker=_TYPES
)
"""Draft 2020-12 with finite numbers and ECMA-262 patterns (no format checks: our schemas use no ``format``)."""


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Validator]] = {}


def validator(schema: Mapping[str, Any]) -> Validator:
    """The compiled validator of a schema object, made on first use and kept (our schemas live as long as the
    process; the schema is kept beside its validator, so its id cannot be reused)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        StrictValidator.check_schema(dict(schema))
        cached = _VALIDATORS[id(schema)] = (schema, StrictValidator(schema))
    return cached[1]


def whole_numbers(schema: Mapping[str, Any], instance: Any, root: Mapping[str, Any] | None = None) -> Any:
    """``instance`` (valid against ``schema``) with every number the schema types ``integer`` as an int: JSON
    writes ``5.0`` for the integer 5, and the twin computes with ints. Follows ``$ref``, ``properties`` and
    ``items`` (``root``: the document ``$ref`` points into; default ``schema``)."""
    root = schema if root is None else root
    if "$ref" in schema:
        schema = _resolve(root, schema["$ref"])
    types = schema.get("type", ())
    if isinstance(instance, float) and "integer" in ([types] if isinstance(types, str) else types):
        return int(instance)
    properties = schema.get("properties", {})
    if isinstance(instance, dict) and properties:
        return {
            key: whole_numbers(properties[key], value, root) if isinstance(properties.get(key), Mapping) else value
            for key, value in instance.items()
        }
    items = schema.get("items")
    if isinstance(instance, list) and isinstance(items, Mapping):
        return [whole_numbers(items, item, root) for item in instance]
    return instance


@dataclass(frozen=True)
class Problem:
    """One refusal: the control API's ``code``, where (``rules[0].delay_ms``; ``""`` for the whole body), what
    is wrong (``text``: ``must be a number from 0 to 1``), and ``extra`` keys for the error body."""

    code: str
    where: str
    text: str
    unknown_key: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self, separator: str = " ") -> str:
        """``where`` and ``text`` as one line: ``"rules[0].count must be ..."`` (or ``": "`` between them)."""
        if not self.where:
            return self.text
        return f"{self.where}: {self.text}" if self.unknown_key else f"{self.where}{separator}{self.text}"


_DEFAULT_CODES = {"additionalProperties": "unknown_key", "type": "bad_type", "required": "missing_key"}
_TYPE_WORDS = {
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def problems(schema: Mapping[str, Any], instance: Any) -> list[Problem]:
    """Every problem of ``instance``, most relevant first: unknown keys, then by position in the instance."""
    errors = sorted(validator(schema).iter_errors(instance), key=_rank)
    return [_problem(schema, error) for error in errors]


def first_problem(schema: Mapping[str, Any], instance: Any) -> Problem | None:
    """The most relevant problem (``problems``' first), or None when ``instance`` is valid."""
    found = problems(schema, instance)
    return found[0] if found else None


def _rank(error: jsonschema.ValidationError) -> tuple[Any, ...]:
    path = [(0, item, "") if isinstance(item, int) else (1, 0, str(item)) for item in error.absolute_path]
    return (error.validator != "additionalProperties", path, [str(p) for p in error.absolute_schema_path])


def where_of(path: Iterable[Any]) -> str:
    """``["rules", 0, "delay_ms"]`` -> ``rules[0].delay_ms``."""
    text = ""
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else str(item))
    return text


def _problem(root: Mapping[str, Any], error: jsonschema.ValidationError) -> Problem:
    keyword = str(error.validator)
    node: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    where = where_of(error.absolute_path)
    if keyword == "additionalProperties":
        allowed = sorted(node.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed), key=str) if isinstance(error.instance, dict) else []
        name = f"unknown key {unknown[0] if unknown else '?'!r}"
        if allowed:
            listed = f"{name}; allowed: {', '.join(allowed)}"
        else:  # e.g. FactoryReset: "allowed: " and nothing would read as a list cut short
            listed = f"{name}; {'this object' if where else 'the body'} takes no keys: send {{}}"
        code = _codes(node).get(keyword) or _inherited(root, error, "unknown_key")
        return Problem(code, where, listed, unknown_key=True)
    if keyword == "required":
        given = error.instance if isinstance(error.instance, dict) else {}
        names = error.validator_value if isinstance(error.validator_value, list) else []
        missing = next((str(key) for key in names if key not in given), "?")
        where = f"{where}.{missing}" if where else missing
        own = node.get("properties", {}).get(missing, {})
        code = _codes(own).get("required") or _codes(node).get("required") or _inherited(root, error, "missing_key")
        return Problem(code, where, _phrase(node, "required") or _phrase(own, "required") or "is required")
    codes = _codes(node)
    if keyword == "type" and error.instance is None and "null" in codes:
        code = codes["null"]
    else:
        code = codes.get(keyword) or _inherited(root, error, _DEFAULT_CODES.get(keyword, "bad_value"))
    text = _phrase(node, keyword) or "must be " + describe(node)
    if keyword in ("enum", "const") and error.instance is not None:
        text += f", got {_shown(error.instance)}"
    extra = {"known": list(node["enum"])} if node.get("x-known") and "enum" in node else {}
    return Problem(code, where, text, extra=extra)


def _codes(node: Mapping[str, Any]) -> dict[str, str]:
    codes = node.get("x-codes", {}) if isinstance(node, Mapping) else {}
    return dict(codes)


def _inherited(root: Mapping[str, Any], error: jsonschema.ValidationError, default: str) -> str:
    """The ``x-code`` of the failing node or its nearest ancestor along the schema path (refs followed)."""
    code = default
    node: Any = root
    for part in error.absolute_schema_path:
        if isinstance(node, Mapping):
            code = node.get("x-code", code)
            if part == "$ref" or (part not in node and "$ref" in node):
                node = _resolve(root, node["$ref"])
                code = node.get("x-code", code) if isinstance(node, Mapping) else code
                if part == "$ref":
                    continue
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    if isinstance(node, Mapping):
        code = node.get("x-code", code)
    return code


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _phrase(node: Mapping[str, Any], keyword: str) -> str | None:
    """The node's ``x-message`` for ``keyword`` as a phrase after the key: ``must be ...`` unless it says."""
    message = node.get("x-message") if isinstance(node, Mapping) else None
    if isinstance(message, Mapping):
        message = message.get(keyword, message.get("*"))
    if message is None:
        return None
    text = str(message)
    return text if text.startswith(("must ", "may ", "is ", "only ")) else f"must be {text}"


def describe(schema: Mapping[str, Any]) -> str:
    """What a value of ``schema`` must be, in words: ``a number from 0 to 1``, ``one of real, virtual``."""
    if "enum" in schema:
        return "one of " + ", ".join(_shown(value, quote=False) for value in schema["enum"])
    if "const" in schema:
        return _shown(schema["const"], quote=False)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in types if t != "null") or "a value"
    if "minimum" in schema and "maximum" in schema:
        words += f" from {_num(schema['minimum'])} to {_num(schema['maximum'])}"
    elif "exclusiveMinimum" in schema:
        words += f" above {_num(schema['exclusiveMinimum'])}"
        if "maximum" in schema:
            words += f" and at most {_num(schema['maximum'])}"
    elif "minimum" in schema:
        words += f" of at least {_num(schema['minimum'])}"
    if "maxLength" in schema:
        words += f" of {schema.get('minLength', 0)} to {schema['maxLength']} characters"
    if "maxItems" in schema:
        words += f" of at most {schema['maxItems']} items"
    if "null" in types:
        words += ", or null"
    return words


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _shown(value: Any, quote: bool = True) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value[:40]) if quote else value
    return repr(value)[:40]


def public(schema: Any) -> Any:
    """A copy of ``schema`` without the ``x-`` annotations (for published documents)."""
    if isinstance(schema, Mapping):
        return {key: public(value) for key, value in schema.items() if not str(key).startswith("x-")}
    if isinstance(schema, list):
        return [public(item) for item in schema]
    return schema
