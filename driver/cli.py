"""`iemdcr-driver`: run the driver against a meter from the command line (monitor, start, stop; driver.md §4)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

from iemdcr_twin import __version__
from iemdcr_twin.driver.clock import Clock
from iemdcr_twin.driver.config import REQUEST_TIMEOUT_MAX_S, DriverConfig
from iemdcr_twin.driver.driver import IemDcrDriver
from iemdcr_twin.driver.events import COMMUNICATION_FAULT_RAISED, INITIALISED, POWERMETER, TRANSACTION_ENDED
from iemdcr_twin.driver.types import (
    OCMFIdentificationFlags,
    OCMFIdentificationLevel,
    OCMFIdentificationType,
    OCMFUserIdentificationStatus,
    TransactionReq,
    TransactionRequestStatus,
    TransactionStartResponse,
    TransactionStopResponse,
)

# config key -> the flag that sets it, so a config error names what the user typed
FLAG_OF_KEY = {
    "ip_address": "--url",
    "port_http": "--url",
    "url": "--url",
    "CT": "--ct",
    "CI": "--ci",
    "TT_initial": "--tt-initial",
    "US": "--us",
    "timezone": "--timezone",
    "timezone_handle_DST": "--no-dst",
    "datetime_resync_interval": "--datetime-resync-interval",
    "resilience_transaction_request_retries": "--retries",
    "resilience_transaction_request_retry_delay": "--retry-delay-ms",
    "resilience_initial_connection_retry_delay": "--init-retry-delay-ms",
    "request_timeout_s": "--timeout-s",
    "signature_timeout_ms": "--signature-timeout-ms",
}

# Flags are checked with ASCII classes and full matches: int() and float() accept any Unicode digit ("٣", "３")
# and surrounding whitespace, a trailing newline included.
_ASCII_INT = re.compile(r"-?[0-9]+", re.ASCII)
_ASCII_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)


_PRINTABLE_ASCII_WORD = re.compile(r"[\x21-\x7e]+", re.ASCII)


def _ascii_number(pattern: re.Pattern[str], convert: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """A flag's parser: `what` says what the flag takes. "ASCII digits" is named only when the text has other
    characters (Unicode digits, whitespace): `-1` or `1e9` for --timeout-s are ASCII, just not a value it takes."""

    def parse(text: str) -> Any:
        if not pattern.fullmatch(text):
            how = "" if _PRINTABLE_ASCII_WORD.fullmatch(text) else ", written in ASCII digits"
            raise argparse.ArgumentTypeError(f"must be {what}{how}, got {text!r}")
        try:
            return convert(text)
        except ValueError:  # int() refuses more than 4300 digits
            raise argparse.ArgumentTypeError(f"must be {what}, got {len(text)} digits") from None

    parse.__name__ = what
    return parse


ascii_int = _ascii_number(_ASCII_INT, int, "an integer")
ascii_seconds = _ascii_number(
    _ASCII_DECIMAL, float, f"a number of seconds above 0 and at most {REQUEST_TIMEOUT_MAX_S} (e.g. 5 or 0.5)"
)


def build_parser() -> argparse.ArgumentParser:
    """The flags: one per DriverConfig key (FLAG_OF_KEY), then the `monitor`, `start` and `stop` commands."""
    parser = argparse.ArgumentParser(
        prog="iemdcr-driver", description="Talk to an Isabellenhuette IEM-DCR meter (or its twin)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--url", required=True, help="meter API base, http://HOST:PORT")
    parser.add_argument("--ct", default="EVSEID", help="CT, charge point identification type (EVSEID)")
    parser.add_argument("--ci", default="1234", help="CI, charge point identification (1234)")
    parser.add_argument("--tt-initial", default="", help="initial tariff text")
    parser.add_argument("--us", action="store_true", help="show the user ID on the meter display")
    parser.add_argument(
        "--timezone",
        default="+0100",
        help="±HHMM offset of normal time (+0100), or an IANA zone name such as Europe/Berlin",
    )
    parser.add_argument(
        "--no-dst", action="store_true", help="keep a ±HHMM offset fixed (default: EU summer time adds one hour)"
    )
    parser.add_argument("--datetime-resync-interval", type=ascii_int, default=2, help="hours, 1..24 (2)")
    parser.add_argument("--retries", type=ascii_int, default=3, help="transaction request retries, 0..5 (3)")
    parser.add_argument("--retry-delay-ms", type=ascii_int, default=250, help="200..1000 (250)")
    parser.add_argument("--init-retry-delay-ms", type=ascii_int, default=10000, help="1000..65535 (10000)")
    parser.add_argument(
        "--signature-timeout-ms",
        type=ascii_int,
        default=10000,
        help="how long to keep asking for a record the meter is still signing, 250..600000 (10000)",
    )
    parser.add_argument(
        "--timeout-s",
        type=ascii_seconds,
        default=5.0,
        help=f"per-request timeout in s, above 0, at most {REQUEST_TIMEOUT_MAX_S} (5)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log driver activity to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    monitor = commands.add_parser("monitor", help="print one JSON line per publication and event")
    monitor.add_argument("--count", type=ascii_int, default=None, help="stop after N powermeter publications")

    start = commands.add_parser("start", help="start a transaction")
    start.add_argument("--evse-id", default="", help="must be empty or equal to CI")
    start.add_argument("--transaction-id", required=True, help="the transaction's ID, not empty")
    start.add_argument(
        "--id-status",
        default=OCMFUserIdentificationStatus.NOT_ASSIGNED.value,
        choices=[m.value for m in OCMFUserIdentificationStatus],
    )
    start.add_argument(
        "--id-type", default=OCMFIdentificationType.NONE.value, choices=[m.value for m in OCMFIdentificationType]
    )
    start.add_argument("--id-data", default=None, help="OCMF ID; the transaction id when empty")
    start.add_argument("--id-level", default=None, choices=[m.value for m in OCMFIdentificationLevel])
    start.add_argument("--id-flag", action="append", default=[], choices=[m.value for m in OCMFIdentificationFlags])
    start.add_argument("--tariff-text", default=None)

    stop = commands.add_parser(
        "stop",
        help="stop the transaction (or fetch the last record)",
        description=(
            "Stop the running transaction and print its record, or, with none running, the meter's last record. "
            "Each call is a new process that knows nothing of earlier calls: after a refused start, stop returns "
            "the meter's last record, which may be an earlier transaction's (EVerest's fallback after a driver "
            "restart). Check the record's ID and PG before using it."
        ),
    )
    stop.add_argument(
        "--transaction-id",
        default="",
        help="not sent to the meter and not checked against the record, as in EVerest",
    )
    return parser


def config_from_args(args: argparse.Namespace, clock: Clock | None = None) -> DriverConfig:
    """Map flags to a DriverConfig; a ValueError names the flag that caused it."""
    settings: dict[str, Any] = {
        "CT": args.ct,
        "CI": args.ci,
        "TT_initial": args.tt_initial,
        "US": args.us,
        "timezone": args.timezone,
        "timezone_handle_DST": not args.no_dst,
        "datetime_resync_interval": args.datetime_resync_interval,
        "resilience_transaction_request_retries": args.retries,
        "resilience_transaction_request_retry_delay": args.retry_delay_ms,
        "resilience_initial_connection_retry_delay": args.init_retry_delay_ms,
        "request_timeout_s": args.timeout_s,
        "signature_timeout_ms": args.signature_timeout_ms,
    }
    if clock is not None:
        settings["clock"] = clock
    try:
        return DriverConfig.from_url(args.url, **settings)
    except ValueError as error:
        key, _, rest = str(error).partition(":")
        flag = FLAG_OF_KEY.get(key.strip())
        raise ValueError(f"{flag}: {rest.strip()}" if flag else str(error)) from None


def _print(out: TextIO, data: Any) -> None:
    out.write(json.dumps(data, separators=(",", ":")) + "\n")
    out.flush()


async def _until_ready(drv: IemDcrDriver) -> str | None:
    """Wait for the first init; one-shot commands give up at the first failed attempt (returns why)."""
    with drv.subscribe([INITIALISED, COMMUNICATION_FAULT_RAISED]) as events:
        await drv.start()
        event = await events.get()
    return None if event.name == INITIALISED else str(event.data)


async def _monitor(drv: IemDcrDriver, count: int | None, out: TextIO) -> int:
    published = 0
    with drv.subscribe() as events:
        await drv.start()
        async for event in events:
            _print(out, event.to_json())
            if event.name == POWERMETER:
                published += 1
                if count is not None and published >= count:
                    return 0
    return 0  # pragma: no cover - the subscription never ends


async def run(argv: list[str], *, clock: Clock | None = None, out: TextIO | None = None) -> int:
    """The CLI without process concerns, so tests can run it in-process on a virtual clock.

    Prints JSON lines to `out` (events for monitor, the response for start and stop) and returns the exit status:
    0 when the response is OK, 1 otherwise; a bad flag exits 2 through argparse with a message naming it.
    """
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr)
    try:
        config = config_from_args(args, clock)
        req = None
        if args.command == "start":
            req = TransactionReq(
                evse_id=args.evse_id,
                transaction_id=args.transaction_id,
                identification_status=OCMFUserIdentificationStatus(args.id_status),
                identification_type=OCMFIdentificationType(args.id_type),
                identification_flags=[OCMFIdentificationFlags(flag) for flag in args.id_flag],
                identification_level=OCMFIdentificationLevel(args.id_level) if args.id_level else None,
                identification_data=args.id_data,
                tariff_text=args.tariff_text,
            )
    except ValueError as error:
        message = str(error).replace("TransactionReq.identification_flags", "--id-flag")
        parser.error(message)
    if args.command == "monitor" and args.count is not None and args.count < 1:
        parser.error("--count: must be at least 1")
    if args.command == "start" and not args.transaction_id:
        parser.error("--transaction-id: must not be empty; it names the transaction (and is the OCMF ID by default)")

    drv = IemDcrDriver(config)
    try:
        if args.command == "monitor":
            return await _monitor(drv, args.count, out)
        problem = await _until_ready(drv)
        response: TransactionStartResponse | TransactionStopResponse
        if problem is not None:
            not_ready = f"meter not ready: {problem}"
            if args.command == "start":
                response = TransactionStartResponse(TransactionRequestStatus.UNEXPECTED_ERROR, error=not_ready)
            else:
                response = TransactionStopResponse(TransactionRequestStatus.UNEXPECTED_ERROR, error=not_ready)
        elif req is not None:
            # fix 16: a start that ends a running transaction publishes its record; print it, it must not be lost
            unsubscribe = drv.events.on(lambda event: _print(out, event.to_json()), [TRANSACTION_ENDED])
            try:
                response = await drv.start_transaction(req)
            finally:
                unsubscribe()
        else:
            response = await drv.stop_transaction(args.transaction_id)
        _print(out, response.to_json())
        return 0 if response.status == TransactionRequestStatus.OK else 1
    finally:
        await drv.stop()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(run(sys.argv[1:] if argv is None else argv)))
    sys.exit(130)


if __name__ == "__main__":
    main()
