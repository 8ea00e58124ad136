"""How deep a JSON request body nests, measured before it is parsed (meter-api.md §1, control-api.md §2).

Python's ``json`` parses about a thousand levels, and a deep body that a node accepts (unknown keys are ignored)
lives on in the journal, where every later encoding of it pays, or fails, again. Both APIs therefore refuse a
body nested deeper than ``MAX_JSON_DEPTH`` levels with 400 ``bad_json`` before parsing it. The check costs two
``bytes.count`` calls for any body with at most that many brackets (every real request), and one pass over the
brackets outside strings otherwise.

``parse_json`` is the one parse of a request body on both APIs: the depth check first, then ``json.loads``, its
refusal worded by ``not_json_message`` (what it found and where); ``not_an_object`` words a body of another kind.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 32
# A JSON string, escapes included. Possessive, and the closing quote optional: an unterminated string runs to
# the end instead of being tried again from every later quote (which would make hostile bodies quadratic).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPENERS = frozenset(b"[{")


def nesting_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text ``raw`` nests arrays and objects more than ``limit`` levels deep.

    ``{}`` is one level, ``{"a": [1]}`` two. Brackets inside strings do not count. For text that is not JSON
    (an unterminated string, say) the answer may be either; ``json.loads`` refuses such text anyway.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def not_json_message(error: Exception) -> str:
    """The 400 ``bad_json`` message for a body ``json.loads`` refused with ``error``, naming the parser's place.

    ``JSONDecodeError`` (``{"current_A":5`` -> ``the body is not valid JSON: Expecting ',' delimiter: line 1
    column 15 (char 14)``), ``UnicodeDecodeError`` (not UTF-8, -16 or -32 text) and ``RecursionError`` (arrays
    nested past the interpreter's limit).
    """
    if isinstance(error, json.JSONDecodeError):
        if not error.doc.strip():
            return "the body is empty: send a JSON object"
        return f"the body is not valid JSON: {error}"
    if isinstance(error, UnicodeDecodeError):
        return f"the body is not valid JSON: it is not UTF-8 text (byte {error.start}: {error.reason})"
    if isinstance(error, RecursionError):
        return f"the body must be a JSON object nested at most {MAX_JSON_DEPTH} levels deep"
    return f"the body is not valid JSON: {error}"


class BadJson(ValueError):
    """A request body that is not JSON as the APIs take it; the message is the text of their 400 ``bad_json``."""


def parse_json(raw: bytes, *, refuse_duplicates: bool = False) -> Any:
    """The JSON value of the body ``raw``. BadJson when it nests deeper than MAX_JSON_DEPTH (checked before it is
    parsed), is not valid JSON (``not_json_message``), or, with ``refuse_duplicates``, gives one key twice in an object
    (RFC 8259 §4 leaves its meaning open: the control API refuses it, the meter API keeps the last value)."""
    if nesting_exceeds(raw):
        raise BadJson(f"the body must be a JSON object nested at most {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(raw, object_pairs_hook=unique_keys if refuse_duplicates else None)
    except BadJson:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        raise BadJson(not_json_message(exc)) from None


class DuplicateKey(BadJson):
    """A JSON object with one key twice (``key``); the message is the control API's 400 ``bad_json`` text."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key[:100]!r} appears twice in one object of the body; give each key once")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' ``object_pairs_hook`` for JSON whose objects give each key once: the object, or
    DuplicateKey naming the key given twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


_JSON_KINDS: dict[type, str] = {list: "a list", str: "a string", int: "a number", float: "a number"}
_JSON_KINDS.update({bool: "true or false", type(None): "null"})


def not_an_object(value: Any) -> str:
    """The 400 ``bad_json`` message for a body that is JSON but not an object (``[1]``: ``... not a list``)."""
    return f"the body must be a JSON object, not {_JSON_KINDS.get(type(value), type(value).__name__)}"
