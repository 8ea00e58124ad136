"""docs/architecture.md shows the layers exactly as the import-linter contracts in pyproject.toml state them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = {
    contract["id"]: contract
    for contract in tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"][
        "contracts"
    ]
}
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def contract_layers(contract_id: str) -> list[set[str]]:
    """The contract's layers, top to bottom, each as its set of module names."""
    return [{name.strip() for name in re.split(r"[|:]", layer)} for layer in CONTRACTS[contract_id]["layers"]]


def doc_layers(contract_id: str) -> list[set[str]]:
    """The first column of the table after "(contract `ID`", each row's backticked names (a trailing / dropped)."""
    after = DOC.split(f"(contract `{contract_id}`", 1)[1]
    rows = [line for line in after.split("\n\n", 2)[1].splitlines() if line.startswith("| `")]
    return [{name.rstrip("/") for name in re.findall(r"`([^`]+)`", row.split(" | ")[0])} for row in rows]


@pytest.mark.parametrize("contract_id", ["root", "simulator", "control"])
def test_the_documented_layers_are_the_contracts(contract_id: str) -> None:
    assert doc_layers(contract_id) == contract_layers(contract_id)


def test_every_contract_is_named_in_the_document() -> None:
    for contract_id in CONTRACTS:
        assert f"`{contract_id}`" in DOC, contract_id


def test_the_layers_are_exhaustive_and_nothing_is_ignored_but_type_only_imports() -> None:
    """A new module must be ranked, and no upward import hides in an exceptions list (control-house, issue 14)."""
    for contract_id in ("root", "simulator", "control"):
        assert CONTRACTS[contract_id]["exhaustive"] is True
    for contract_id, contract in CONTRACTS.items():
        ignored = contract.get("ignore_imports", [])
        assert contract_id == "acyclic" or not ignored, contract_id
        for line in ignored:
            importer, imported = (part.strip() for part in line.split("->"))
            path = REPO / "simulator" / Path(*importer.split(".")[2:]).with_suffix(".py")
            text = path.read_text(encoding="utf-8")
            assert "if TYPE_CHECKING:" in text, f"{line}: {path.name} imports nothing type-only"
            block = text.split("if TYPE_CHECKING:", 1)[1].split("\n\n", 1)[0]
            assert f"from {imported} import" in block, f"{line}: not a type-only import"
            assert f"from {imported} import" not in text.replace(block, ""), f"{line}: imported at run time too"
