"""``iemdcr-sim scenario run [PATHS...] [--junit FILE] [--json FILE] [-k PATTERN]``.

Exit status: 0 when every scenario passes, 1 when one fails, 2 when a file is broken or a report cannot be
written where ``--junit``/``--json`` say (nothing runs then; ``--junit`` and ``--json`` naming one file too),
and 2 when a report fails to be written after the scenarios ran (a full disk: their results are printed).
A deprecated name in a file (scenarios/README.md, "Deprecated names") is reported on stderr and still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iemdcr_twin.asciinum import parse_int

if TYPE_CHECKING:  # the runner, the driver and pyocmf load when a scenario runs, not when `serve` starts
    from iemdcr_twin.simulator.scenario.loader import Scenario
    from iemdcr_twin.simulator.scenario.results import ScenarioResult

DEFAULT_PATH = Path("scenarios")
DEFAULT_JOBS = 8


def jobs(text: str) -> int:
    """``-j``: how many scenarios run at once, a positive integer; raises ArgumentTypeError otherwise."""
    try:
        value = parse_int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), not {text!r}")
    return value


def report_path(text: str) -> Path:
    """``--junit``/``--json``: a file to write; an empty text is refused (``Path("")`` would be the current
    folder)."""
    if not text:
        raise argparse.ArgumentTypeError("the path is empty; name the file to write")
    return Path(text)


def report_problem(option: str, path: Path) -> str | None:
    """Why the report ``option`` (``--junit``/``--json``) cannot be written to ``path``, or None when it can:
    a folder, a folder that does not exist, or one (or a file) this process may not write."""
    if path.is_dir():
        return f"{option} {path}: is a folder; name a file in it"
    folder = path.parent
    if not folder.is_dir():
        return f"{option} {path}: the folder {folder} does not exist" + (" (it is a file)" if folder.exists() else "")
    if path.exists() and not os.access(path, os.W_OK):
        return f"{option} {path}: the file cannot be written (permission denied)"
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return f"{option} {path}: the folder {folder} cannot be written (permission denied)"
    return None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``scenario run`` to the ``iemdcr-sim`` sub-commands."""
    scenario: argparse.ArgumentParser = subparsers.add_parser(
        "scenario", help="run scripted scenarios against an in-process twin"
    )
    actions = scenario.add_subparsers(dest="scenario_command", required=True)
    run_parser = actions.add_parser("run", help="run scenario files (default: scenarios/)")
    run_parser.add_argument("paths", nargs="*", type=Path, help="scenario files or directories")
    run_parser.add_argument("--junit", type=report_path, metavar="FILE", help="write a JUnit XML report")
    run_parser.add_argument("--json", type=report_path, metavar="FILE", help="write a JSON report")
    run_parser.add_argument(
        "-k",
        dest="pattern",
        metavar="PATTERN",
        help="only scenarios whose file stem or name contains PATTERN (or glob)",
    )
    run_parser.add_argument(
        "-j", "--jobs", type=jobs, default=DEFAULT_JOBS, help="scenarios run at once, 1 or more (default 8)"
    )
    run_parser.add_argument("-v", "--verbose", action="store_true", help="show the driver's and the twin's logs")
    return scenario


def selected(scenario: Scenario, pattern: str | None) -> bool:
    """Whether ``-k PATTERN`` selects it: a case-insensitive substring (or glob) of the stem or the name."""
    if not pattern:
        return True
    lowered = pattern.lower()
    haystacks = (scenario.stem.lower(), scenario.name.lower())
    if any(ch in pattern for ch in "*?["):
        return any(fnmatch.fnmatchcase(h, lowered) for h in haystacks)
    return any(lowered in h for h in haystacks)


def load_all(paths: list[Path]) -> tuple[list[Scenario], list[str]]:
    """Every scenario under ``paths`` (default: scenarios/) and every problem message of the broken files."""
    from iemdcr_twin.simulator.scenario.loader import ScenarioFileError, discover, load_file

    scenarios: list[Scenario] = []
    problems: list[str] = []
    files = discover(paths or [DEFAULT_PATH])
    if not files:
        problems.append(f"no scenario files in {', '.join(str(p) for p in paths or [DEFAULT_PATH])}")
    for path in files:
        try:
            scenarios.append(load_file(path))
        except ScenarioFileError as exc:
            problems.extend(exc.messages)
    return scenarios, problems


def run(args: argparse.Namespace) -> int:
    """Run the ``scenario run`` command; the exit status (0 all pass, 1 a failure, 2 a broken file or a report
    path that cannot be written, checked before anything runs, or a report that failed to be written at the end)."""
    from iemdcr_twin.simulator.scenario import report
    from iemdcr_twin.simulator.scenario.vclock import wall

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.CRITICAL,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if args.junit is not None and args.json is not None and args.junit.resolve() == args.json.resolve():
        print(
            f"iemdcr-sim: --json {args.json} and --junit {args.junit} name the same file; give each report its own;"
            " nothing was run",
            file=sys.stderr,
        )
        return 2
    unwritable = [
        problem
        for option, path in (("--junit", args.junit), ("--json", args.json))
        if path is not None and (problem := report_problem(option, path)) is not None
    ]
    if unwritable:
        for problem in unwritable:
            print(f"iemdcr-sim: {problem}; nothing was run", file=sys.stderr)
        return 2
    scenarios, problems = load_all(list(args.paths))
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) in scenario files; nothing was run", file=sys.stderr)
        return 2
    for scenario in scenarios:  # deprecated names still run; each use is named once, on stderr
        for note in scenario.deprecations:
            print(note, file=sys.stderr)
    chosen = [scenario for scenario in scenarios if selected(scenario, args.pattern)]
    if not chosen:
        print(f"no scenario matches -k {args.pattern!r}", file=sys.stderr)
        return 2
    started = wall()
    results: list[ScenarioResult] = asyncio.run(_run(chosen, args.jobs))
    elapsed = wall() - started
    for result in results:
        print(report.text(result))
    failed = [result for result in results if not result.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed in {elapsed:.2f} s wall")
    status = 1 if failed else 0
    for option, path, render in (("--junit", args.junit, report.junit), ("--json", args.json, report.as_json)):
        if path is not None and not write_report(option, path, render(results, elapsed)):
            status = 2
    return status


def write_report(option: str, path: Path, text: str) -> bool:
    """Write the report ``option`` to ``path``; False after one line on stderr naming the option, the path and
    the reason when it cannot be written (a full disk, a folder removed while the scenarios ran)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"iemdcr-sim: {option} {path}: the report cannot be written ({why})", file=sys.stderr)
        return False
    return True


async def _run(scenarios: list[Scenario], jobs: int) -> list[ScenarioResult]:
    from iemdcr_twin.simulator.scenario.runner import run_all

    return await run_all(scenarios, jobs)
