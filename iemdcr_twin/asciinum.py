"""Numbers from untrusted text (command lines, query strings, config), ASCII digits only.

Python's ``int()`` and ``float()`` accept any Unicode decimal digit (``int("٣")`` is 3, ``float("１.5")`` is
1.5), surrounding whitespace (``int(" 3\\n")``) and underscores (``int("1_0")``), and ``float()`` takes
``nan`` and ``inf``. Input that a meter, a driver or a lab tool reads must be what it looks like, so these
parse only the plain ASCII forms and raise ValueError for everything else. Shared by the twin and the driver.
"""

from __future__ import annotations

import math
import re

_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_int(text: str) -> int:
    """``[+-]?[0-9]+`` as an int; ValueError for any other text (Unicode digits, spaces, ``_``, newlines)."""
    if not isinstance(text, str) or _INT.fullmatch(text) is None:
        raise ValueError(f"not a whole number in ASCII digits: {text!r}")
    return int(text)


def parse_float(text: str) -> float:
    """A finite decimal number (``1``, ``-2.5``, ``.5``, ``1e3``) in ASCII; ValueError for anything else."""
    if not isinstance(text, str) or _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"not a number in ASCII digits: {text!r}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value
