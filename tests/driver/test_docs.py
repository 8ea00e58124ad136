"""The driver's documentation quotes what the driver prints: event line keys and reasons, word for word."""

from __future__ import annotations

import json
import re
from pathlib import Path

from iemdcr_twin.driver.events import COMMUNICATION_FAULT_CLEARED, COMMUNICATION_FAULT_RAISED, DriverEvent

REPO = Path(__file__).resolve().parents[2]


def cli_section(text: str) -> str:
    return text.split("## Command line", 1)[1].split("\n## ", 1)[0]


def test_the_readme_names_every_key_of_a_fault_event_line() -> None:
    section = " ".join(cli_section((REPO / "driver" / "README.md").read_text(encoding="utf-8")).split())
    for name in (COMMUNICATION_FAULT_RAISED, COMMUNICATION_FAULT_CLEARED):
        line = DriverEvent(name, "why", 0.0, 1).to_json()
        for key in line:
            assert f'"{key}"' in section, f"driver/README.md's command line section does not name {key!r}"
        assert f'"error_type": "{line["error_type"]}"' in section


def test_the_readme_says_a_new_cli_process_falls_back_to_the_last_record() -> None:
    section = " ".join(cli_section((REPO / "driver" / "README.md").read_text(encoding="utf-8")).split())
    assert "new driver process" in section and "last record" in section and "not checked against the record" in section


def test_the_lab_guide_quotes_reasons_the_driver_gives() -> None:
    """Every reinitialising reason docs/lab.md shows is text the driver's source holds, in full."""
    source = (REPO / "driver" / "driver.py").read_text(encoding="utf-8")
    quoted = [
        json.loads(line)["data"]
        for line in re.findall(
            r'^\s*(\{"event":"reinitialising".*\})\s*$', (REPO / "docs" / "lab.md").read_text(encoding="utf-8"), re.M
        )
    ]
    assert quoted
    for reason in quoted:
        assert f'"{reason}"' in " ".join(source.split()).replace('" "', ""), reason
