"""iemdcr-twin: a hardware-free twin of the Isabellenhuette IEM-DCR DC meter, a driver, and scenarios.

The distribution installs one import root, ``iemdcr_twin``, so nothing it installs collides with other
people's ``simulator`` or ``driver`` packages:

- ``iemdcr_twin.simulator``: the twin (command ``iemdcr-sim``), from the repository's ``simulator/``;
- ``iemdcr_twin.driver``: the bundled driver (command ``iemdcr-driver``), from ``driver/``.

``__version__`` is the one place the version is kept (pyproject reads it).
"""

__version__ = "0.2.0"
