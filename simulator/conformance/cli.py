"""``iemdcr-sim conformance report|verify``: fetch a report over HTTP and sign it; check a signed report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp

from iemdcr_twin.asciinum import parse_float
from iemdcr_twin.simulator.conformance.report import parse_until, render_text
from iemdcr_twin.simulator.conformance.signing import (
    KEY_FILE,
    DuplicateKey,
    SigningError,
    load_or_create_key,
    parse_document,
    parse_pinned_key,
    sign_report,
    verify_document,
)
from iemdcr_twin.simulator.model.profiles import check_serial

TOKEN_ENV = "IEMDCR_CONTROL_TOKEN"
DEFAULT_STATE_DIR = Path(".state")


class CliError(Exception):
    """A failure to report on stderr with exit status 1."""


def timeout_seconds(text: str) -> float:
    """An argparse type: seconds above 0, ASCII digits only (``float()`` takes any Unicode digit)."""
    try:
        value = parse_float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds in ASCII digits: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def add_parser(commands: Any) -> None:
    """Add ``conformance`` to the ``iemdcr-sim`` subcommands."""
    parser = commands.add_parser("conformance", help="make and verify signed driver conformance reports")
    sub = parser.add_subparsers(dest="conformance_command", required=True)
    report = sub.add_parser("report", help="fetch a meter's conformance report, sign it, write it as JSON")
    report.add_argument("--url", required=True, help="control API URL, e.g. http://127.0.0.1:8090")
    report.add_argument("--serial", required=True, help="the meter's serial")
    report.add_argument(
        "--until",
        type=_until,
        help="end the report's window here, in simulated time (RFC 3339 or seconds since the epoch), when the "
        "driver was stopped on purpose; default: when the report is taken",
    )
    report.add_argument("--out", type=Path, help="output file (default conformance-<serial>.json)")
    report.add_argument("--key", type=Path, help="lab Ed25519 key file (hex seed; created when missing)")
    report.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=f"where the lab key lives without --key ({KEY_FILE})"
    )
    report.add_argument("--token", help=f"control API bearer token (default ${TOKEN_ENV})")
    report.add_argument("--timeout", type=timeout_seconds, default=10.0, help="HTTP timeout in seconds")
    verify = sub.add_parser("verify", help="check a signed conformance report")
    verify.add_argument("file", type=Path, help="the signed report (JSON)")
    verify.add_argument("--key", help="expected signer: public key (hex, or a file holding it) or its fingerprint")


def _until(text: str) -> float:
    try:
        return parse_until(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    try:
        if args.conformance_command == "report":
            return _report(args)
        return _verify(args)
    except (CliError, SigningError) as exc:
        print(f"iemdcr-sim conformance: {exc}", file=sys.stderr)
        return 1


def _report(args: argparse.Namespace) -> int:
    if not (args.url.isascii() and args.url.isprintable()):
        raise CliError(f"--url {args.url!r}: must be printable ASCII, e.g. http://127.0.0.1:8090")
    try:
        check_serial(args.serial)
    except ValueError as exc:
        raise CliError(f"--serial: {exc}") from None
    token = args.token or os.environ.get(TOKEN_ENV)
    report = asyncio.run(fetch_report(args.url, args.serial, token, args.timeout, args.until))
    key_path = args.key or args.state_dir / KEY_FILE
    key, created = load_or_create_key(key_path)
    if created:
        print(f"created a new lab key in {key_path}", file=sys.stderr)
    document = sign_report(report, key)
    out: Path = args.out or Path(f"conformance-{args.serial}.json")
    try:
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc}") from None
    _say(render_text(report) + f"\nSigned by lab key {document['signature']['fingerprint']}; written to {out}\n")
    return 0


def _say(text: str) -> None:
    """Print to stdout; a reader that went away (``| head -1``) is no error: the rest of the output is dropped
    (stdout goes to /dev/null, so the flush at exit cannot fail either) and the command's status stands."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


async def fetch_report(
    url: str, serial: str, token: str | None, timeout_s: float, until: float | None = None
) -> dict[str, Any]:
    """GET the report from a control API (window closed at ``until``, epoch seconds); CliError says what went wrong."""
    target = f"{url.rstrip('/')}/api/meters/{serial}/conformance"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {} if until is None else {"until": repr(until)}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(target, headers=headers, params=params) as response,
        ):
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise CliError(f"cannot reach {target}: {exc or type(exc).__name__}") from None
    try:
        body = json.loads(text)
    except ValueError:
        raise CliError(f"{target} answered {status} without JSON") from None
    if status != 200:
        message = body.get("message", "") if isinstance(body, dict) else ""
        if until is not None and status == 400 and message.startswith("until:"):
            raise CliError(f"--until {until!r}: {message.removeprefix('until:').strip()} ({target})")
        raise CliError(f"{target} answered {status}: {message}".rstrip(": "))
    if not isinstance(body, dict) or "checks" not in body:
        raise CliError(f"{target} did not answer a conformance report")
    return body


def _verify(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        document = parse_document(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except DuplicateKey as exc:
        print(f"{path}: INVALID: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    pinned = _pinned(args.key) if args.key else None
    result = verify_document(document, pinned)
    signer = f" (signer fingerprint {result.fingerprint})" if result.fingerprint else ""
    if not result.valid:
        print(f"{path}: INVALID: {result.reason}{signer}", file=sys.stderr)
        return 1
    report = document["report"]
    meter = report.get("meter", {}) if isinstance(report, dict) else {}
    verdict = report.get("verdict") if isinstance(report, dict) else None
    _say(
        f"{path}: signature valid; signer fingerprint {result.fingerprint}\n"
        f"meter {meter.get('serial')}: overall verdict {verdict}\n"
    )
    return 0


def _pinned(value: str) -> bytes | str:
    path = Path(value)
    if path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read key file {path}: {exc.strerror or exc}") from None
        if len(raw) == 32:
            return raw
        try:
            return parse_pinned_key(raw.decode().strip())  # a key file ends with a newline
        except (UnicodeDecodeError, SigningError) as exc:
            raise CliError(f"key file {path}: {exc}") from None
    return parse_pinned_key(value)
