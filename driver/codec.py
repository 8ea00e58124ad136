"""One JSON codec for the driver's dataclasses, driven by their field types.

The shapes are EVerest's (everest-core `types/powermeter.yaml`, `types/units.yaml`, `types/units_signed.yaml`):
keys are the field names, enums travel as their names, nested types as objects, and an unset optional field
(None) is left out, never sent as null. Supported field types: str, int, float, bool, StrEnum subclasses,
dataclasses, `list[X]` and `X | None`.

Reading: a field without a default is a required key, unless its type admits None; a field with a default may
be missing (or null), unless its metadata is `REQUIRED` (a key EVerest requires although Python gives it a
default). Keys the dataclass does not know are ignored (EVerest's Powermeter has AC fields the driver never
fills). Every problem is a ValueError naming the path, e.g. `TransactionReq.identification_flags[1]: 'X' is not
one of [...]`.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")

REQUIRED: Mapping[str, bool] = types.MappingProxyType({"required": True})
"""Field metadata: the key must be present in JSON although the field has a Python default."""

_NoneType = type(None)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    hint: Any  # the resolved type, with `| None` removed
    may_be_absent: bool  # the key may be missing or null
    has_default: bool


class JsonObject:
    """Base of the driver's JSON types: `to_json()` and `from_json()` over this module's codec."""

    def to_json(self) -> dict[str, Any]:
        """This dataclass as a JSON object in EVerest's shape; None fields are left out."""
        return to_json(self)

    @classmethod
    def from_json(cls, data: object) -> Self:
        """Parse a JSON object (as json.loads gives it); ValueError naming the type and key on any problem."""
        return from_json(cls, data)


def to_json(obj: object) -> dict[str, Any]:
    """Encode dataclass instance `obj` as a JSON object; TypeError if it is not one."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_json needs a dataclass instance, got {type(obj).__name__}")
    out: dict[str, Any] = {}
    for spec in _fields(type(obj)):
        value = getattr(obj, spec.name)
        if value is not None:
            out[spec.name] = _encode(value)
    return out


def _encode(value: object) -> object:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    return value


def from_json(cls: type[T], data: object) -> T:
    """Decode `data` into dataclass `cls`; ValueError naming the path (`Type.key[index].key`) on any problem."""
    return _decode_object(cls, data, cls.__name__)


def _decode_object(cls: type[T], data: object, path: str) -> T:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {_json_type(data)}")
    kwargs: dict[str, Any] = {}
    for spec in _fields(cls):
        value = data.get(spec.name)
        if value is None and spec.may_be_absent:
            if not spec.has_default:
                kwargs[spec.name] = None
            continue
        if spec.name not in data:
            raise ValueError(f"{path}: missing key {spec.name!r}")
        kwargs[spec.name] = _decode(spec.hint, value, f"{path}.{spec.name}")
    return cls(**kwargs)


def _decode(hint: Any, value: object, path: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_object(hint, value, path)
    if get_origin(hint) is list:
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected an array, got {_json_type(value)}")
        (item,) = get_args(hint)
        return [_decode(item, entry, f"{path}[{index}]") for index, entry in enumerate(value)]
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        if not isinstance(value, str):
            raise ValueError(f"{path}: expected a string, got {_json_type(value)}")
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"{path}: {value!r} is not one of {[member.value for member in hint]}") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: expected true or false, got {_json_type(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{path}: expected an integer, got {_json_type(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{path}: expected a number, got {_json_type(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{path}: expected a string, got {_json_type(value)}")
        return value
    raise TypeError(f"{path}: the codec cannot decode fields of type {hint!r}")  # caught by _fields first


_SPECS: dict[type, tuple[_Field, ...]] = {}


def _fields(cls: type) -> tuple[_Field, ...]:
    """The codec's view of dataclass `cls`, checked once: TypeError for a field type it cannot handle."""
    known = _SPECS.get(cls)
    if known is not None:
        return known
    hints = get_type_hints(cls)  # resolves `from __future__` annotations in the module of each class
    specs = []
    for field in dataclasses.fields(cls):
        hint, optional = _strip_none(hints[field.name], f"{cls.__name__}.{field.name}")
        _check_supported(hint, f"{cls.__name__}.{field.name}")
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        required = bool(field.metadata.get("required"))
        specs.append(_Field(field.name, hint, optional or (has_default and not required), has_default))
    _SPECS[cls] = tuple(specs)
    return _SPECS[cls]


def _strip_none(hint: Any, where: str) -> tuple[Any, bool]:
    """(X, True) for `X | None` or Optional[X]; (hint, False) for anything else."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not _NoneType]
        if len(args) != 1:
            raise TypeError(f"{where}: the codec supports `X | None` only, not {hint!r}")
        return args[0], True
    return hint, False


def _check_supported(hint: Any, where: str) -> None:
    if get_origin(hint) is list:
        (item,) = get_args(hint)
        _check_supported(item, f"{where}[]")
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
        _fields(hint)
    elif not (hint in (str, int, float, bool) or (isinstance(hint, type) and issubclass(hint, StrEnum))):
        raise TypeError(f"{where}: the codec cannot handle fields of type {hint!r}")


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, with the value when short: `a string ('5')`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        return "an array"
    elif isinstance(value, dict):
        return "an object"
    else:
        return type(value).__name__
    shown = repr(value)
    return f"{kind} ({shown})" if len(shown) <= 40 else kind
