"""How the twin reads its YAML files (scenario files, fleet files): PyYAML's safe loader, stricter in two ways.

* A mapping with the same key twice is refused (``DuplicateKeyError``, naming the line and the key): PyYAML
  keeps the last value silently, so a file would not do what it says.
* Floats are read as YAML 1.2 writes them: ``1e3``, ``1.0e300`` and ``6.02e23`` are numbers. PyYAML follows
  YAML 1.1, whose float needs a dot and a signed exponent, and reads those as strings.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

# The YAML 1.2 core-schema floats with an exponent that the YAML 1.1 resolver of SafeLoader misses (no dot, or
# no sign in the exponent); the others already resolve to floats. Underscores as YAML 1.1 allows them in digits.
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class DuplicateKeyError(ConstructorError):
    """A mapping holds one key twice; ``problem_mark`` is the second one, the message names both lines."""


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing duplicate keys and reading YAML 1.2 floats (module docstring)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """The mapping of ``node``; raises DuplicateKeyError for a key written twice (``<<`` merges may repeat
        a key on purpose and are left to PyYAML), ConstructorError for what PyYAML refuses."""
        if isinstance(node, MappingNode):
            seen: dict[Any, Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: PyYAML's own error follows below
                    continue
                if first is not None:
                    raise DuplicateKeyError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"key {key!r} appears twice (first on line {first.start_mark.line + 1}); write it once",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


StrictSafeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def load(text: str) -> Any:
    """The data of one YAML document read with ``StrictSafeLoader``; raises ``yaml.YAMLError`` (a
    DuplicateKeyError among them) when it is not valid YAML."""
    return yaml.load(text, Loader=StrictSafeLoader)


def where(exc: yaml.YAMLError) -> str:
    """``line 3, column 5`` of a YAML error (its ``problem_mark``), or ``""`` when it has none."""
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
