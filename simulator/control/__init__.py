"""The control plane: what tests, scenarios, labs and the dashboard do to the twin (control-api.md), on its own
port, apart from device traffic.

Bottom up (the import-linter contract in pyproject.toml; docs/architecture.md): ``errors``, ``hub`` and
``prometheus``; then ``keys`` (app state), ``body`` (request bodies and queries) and ``security``; then one
module per resource; then ``routes`` (the route table); then ``app`` (the factory).
"""
