"""Fleet files: a YAML list of meters (port, serial, profile, switches) for ``iemdcr-sim serve --fleet``.

Labs with mixed meters (a 125 A and a 1000 A meter, one with old firmware switches) describe them once in a
file instead of many flags. The format is the JSON Schema ``schemas.FLEET``; every mistake is reported with the
file and the key, before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from iemdcr_twin.simulator import yaml_files
from iemdcr_twin.simulator.fleet import MeterSpec
from iemdcr_twin.simulator.schemas import FLEET, first_problem, whole_numbers


class FleetFileError(ValueError):
    """A fleet file that cannot be used; the message names the file and the key."""


def load_fleet(path: Path, default_profile: str, default_switches: dict[str, Any] | None = None) -> list[MeterSpec]:
    """Read and check a fleet file: either a list of meters or a mapping with the single key ``meters``, read
    by ``yaml_files.load`` (a key written twice is refused, ``1e3`` is a number). Raises FleetFileError naming
    the file (and the line and key, or the entry's key path) for a file that cannot be read or used."""
    try:
        data = yaml_files.load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = yaml_files.where(exc)
        problem = getattr(exc, "problem", None) or _one_line(exc)
        raise FleetFileError(f"{path}: {where + ': ' if where else ''}not valid YAML ({problem})") from None
    except UnicodeDecodeError as exc:
        raise FleetFileError(f"{path}: not valid YAML ({_one_line(exc)})") from None
    return parse_fleet(data, str(path), default_profile, default_switches or {})


def parse_fleet(data: Any, source: str, default_profile: str, default_switches: dict[str, Any]) -> list[MeterSpec]:
    """The meters of a loaded fleet file (``source`` names it in messages), checked against ``schemas.FLEET``
    and for ports and serials used twice; FleetFileError names the file and the key of the first problem."""
    if isinstance(data, list):
        data = {"meters": data}  # both shapes read alike, and every key is named meters[i]...
    problem = first_problem(FLEET, data)
    if problem is not None:
        raise FleetFileError(f"{source}: {problem.message(': ')}")
    data = whole_numbers(FLEET["$defs"]["meters"], data["meters"], FLEET)
    specs = [
        MeterSpec(
            port=entry["port"],
            profile=entry.get("profile", default_profile),
            serial=entry.get("serial"),
            switches={**default_switches, **entry.get("switches", {})},
        )
        for entry in data
    ]
    _check_unique(specs, source)
    return specs


def _check_unique(specs: list[MeterSpec], source: str) -> None:
    ports: dict[int, int] = {}
    serials: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.port and spec.port in ports:
            raise FleetFileError(
                f"{source}: meters[{index}].port: {spec.port} is also used by meters[{ports[spec.port]}]"
            )
        ports[spec.port] = index
        if spec.serial is not None and spec.serial in serials:
            raise FleetFileError(
                f"{source}: meters[{index}].serial: {spec.serial} is also used by meters[{serials[spec.serial]}]"
            )
        if spec.serial is not None:
            serials[spec.serial] = index


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
