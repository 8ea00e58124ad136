"""iemdcr-twin: a hardware-free twin of the Isabellenhuette IEM-DCR DC meter, a driver, and scenarios.

The distribution installs one import root, ``iemdcr_twin``, so nothing it installs collides with other
people's ``simulator`` or ``driver`` packages:

- ``iemdcr_twin.simulator``: the twin (command ``iemdcr-sim``), from the repository's ``simulator/``;
- ``iemdcr_twin.driver``: the bundled driver (command ``iemdcr-driver``), from ``driver/``.

``__version__`` is the one place the version is kept (pyproject reads it).
"""

from pathlib import Path as _Path

__version__ = "0.2.0"

# In a source checkout the subpackages are the sibling folders simulator/ and driver/ (pyproject's package-dir
# maps them). Python started in the repository root finds this folder first (the current folder leads sys.path),
# ahead of any installed copy, and without this it would find no iemdcr_twin.driver or .simulator inside it. So,
# in a checkout only, the repository root joins the package path; an installed wheel has the subfolders here.
_here = _Path(__file__).resolve().parent
if not (_here / "simulator").is_dir() and all(
    (_here.parent / name).is_file() for name in ("simulator/__init__.py", "driver/__init__.py", "pyproject.toml")
):
    __path__.append(str(_here.parent))
del _here, _Path
