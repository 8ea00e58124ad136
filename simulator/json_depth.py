"""How deep a JSON request body nests, measured before it is parsed (meter-api.md §1, control-api.md §2).

Python's ``json`` parses about a thousand levels, and a deep body that a node accepts (unknown keys are ignored)
lives on in the journal, where every later encoding of it pays, or fails, again. Both APIs therefore refuse a
body nested deeper than ``MAX_JSON_DEPTH`` levels with 400 ``bad_json`` before parsing it. The check costs two
``bytes.count`` calls for any body with at most that many brackets (every real request), and one pass over the
brackets outside strings otherwise.

``not_json_message`` words the parser's refusal of a body the same way on both APIs: what it found and where.
"""

from __future__ import annotations

import json
import re

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
