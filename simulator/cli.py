"""``iemdcr-sim``: serve meters, run scenarios, make and check conformance reports."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from iemdcr_twin import __version__
from iemdcr_twin.asciinum import parse_float, parse_int
from iemdcr_twin.simulator import limits
from iemdcr_twin.simulator.app import create_control_app
from iemdcr_twin.simulator.clock import ClockError, SimClock, check_epoch
from iemdcr_twin.simulator.conformance import cli as conformance_cli
from iemdcr_twin.simulator.control.security import (
    TOKEN_ENV,
    EmptyToken,
    host_arg,
    is_loopback,
    origin_arg,
    token_arg,
    token_from_env,
)
from iemdcr_twin.simulator.fleet import CannotListen, MeterSpec, Twin, reason
from iemdcr_twin.simulator.fleet_file import load_fleet
from iemdcr_twin.simulator.log_limits import limit_malformed_request_logs
from iemdcr_twin.simulator.model import PROFILES, StorageError, Switches
from iemdcr_twin.simulator.model.profiles import DEFAULT_PROFILE
from iemdcr_twin.simulator.scenario import cli as scenario_cli
from iemdcr_twin.simulator.store import UnusableFolder

log = logging.getLogger("iemdcr")
DEFAULT_CONTROL_PORT = 8090
MAX_PORT = 65535


_STANDARD_LOG_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line; fields passed with ``extra=`` (meter, fault, path...) become keys."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({key: value for key, value in vars(record).items() if key not in _STANDARD_LOG_FIELDS})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLogFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    limit_malformed_request_logs()  # a client must not fill the log with aiohttp's parser tracebacks


def parse_epoch(text: str) -> float:
    """Epoch seconds or ISO 8601 with an offset, within the times a meter can show (``clock.check_epoch``)."""
    try:
        epoch = parse_float(text)
    except ValueError:
        epoch = _iso_epoch(text)
    try:
        return check_epoch(epoch, text)
    except ClockError as exc:
        raise argparse.ArgumentTypeError(f"--epoch {exc}") from None


def _iso_epoch(text: str) -> float:
    try:
        if not text.isascii():
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--epoch {text!r}: use epoch seconds or ISO 8601") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--epoch {text!r}: give a UTC offset, e.g. 2025-06-06T09:00:00+00:00")
    return moment.timestamp()


def port_number(text: str) -> int:
    try:
        value = parse_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0..{MAX_PORT}")
    return value


def positive_int(text: str) -> int:
    try:
        value = parse_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def state_dir(text: str) -> Path:
    """A folder for ``--state-dir``; an empty one is refused (it would put meters' folders into the current one)."""
    if not text:
        raise argparse.ArgumentTypeError("must name a folder, not be empty (for the current folder write '.')")
    return Path(text)


def idle_seconds(text: str) -> float:
    try:
        value = parse_float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and at most 3600 seconds")
    return value


class _GivenMeters(argparse.Action):
    """Stores ``--meters`` and notes that it was given (``meters_given``): --fleet refuses it even as 1."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.meters_given = True


def serve_args_problem(args: argparse.Namespace) -> str | None:
    """What ``serve`` refuses in flags that each parse alone: ``--meters`` with ``--fleet``, and meters whose
    consecutive ports from ``--port`` would pass 65535. None when they fit together."""
    if args.fleet is not None and getattr(args, "meters_given", False):
        return "argument --meters: not allowed with --fleet (the fleet file lists the meters)"
    last = args.port + args.meters - 1
    if args.port != 0 and last > MAX_PORT:
        return (
            f"argument --meters: --port {args.port} with --meters {args.meters} needs ports {args.port}..{last}, "
            f"but the last port is {MAX_PORT}; give a lower --port or fewer --meters"
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iemdcr-sim", description="Digital twin of the Isabellenhuette IEM-DCR.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve one or more meters and the control API")
    serve.add_argument("--host", default="127.0.0.1", help="bind address of meter and control ports")
    serve.add_argument("--port", type=port_number, default=8080, help="first meter-API port (0 = pick free ports)")
    serve.add_argument(
        "--meters",
        type=positive_int,
        default=1,
        action=_GivenMeters,
        help="how many meters, on consecutive ports from --port (not with --fleet)",
    )
    serve.add_argument(
        "--control-port",
        type=port_number,
        default=None,
        help="control API and dashboard port (8090; with --port 0 a free port unless given)",
    )
    serve.add_argument("--state-dir", type=state_dir, help="keep non-volatile memory in DIR/<serial>/")
    serve.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    serve.add_argument(
        "--set",
        dest="switches",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="firmware switch, repeatable (README: Firmware switches)",
    )
    serve.add_argument("--clock", choices=("real", "virtual"), default="real")
    serve.add_argument("--epoch", type=parse_epoch, help="start of virtual time (epoch seconds or ISO 8601)")
    serve.add_argument("--seed", help="derive new keys from this seed (a state dir keeps the key it already holds)")
    serve.add_argument("--journal-size", type=positive_int, default=10_000)
    serve.add_argument("--log-format", choices=("text", "json"), default="text")
    serve.add_argument(
        "--fleet", type=Path, metavar="FILE", help="YAML list of meters (port, serial, profile, switches)"
    )
    serve.add_argument(
        "--idle-timeout",
        type=idle_seconds,
        default=limits.IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help=f"close connections idle or half-open this long, on every port ({limits.IDLE_TIMEOUT_S:g})",
    )
    serve.add_argument(
        "--control-token",
        type=token_arg,
        help=f"require Authorization: Bearer TOKEN on the control API (or set {TOKEN_ENV}); not empty",
    )
    serve.add_argument(
        "--allow-host",
        type=host_arg,
        action="append",
        default=[],
        metavar="NAME",
        help="a further Host name the control API answers to (repeatable; '*' for any)",
    )
    serve.add_argument(
        "--allow-origin",
        type=origin_arg,
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a further web origin that may call the control API, e.g. a proxy's (repeatable)",
    )
    conformance_cli.add_parser(commands)
    scenario_cli.add_parser(commands)
    return parser


def fail(message: str) -> SystemExit:
    """Print ``iemdcr-sim: message`` on stderr; the SystemExit(2) to raise (a start-up error, no traceback)."""
    print(f"iemdcr-sim: {message}", file=sys.stderr)
    return SystemExit(2)


def check_host(host: str) -> None:
    """Exit 2 naming ``--host`` when it does not resolve to an address (before anything is built)."""
    try:
        socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise fail(f"--host {host}: cannot be resolved to an address to listen on ({reason(exc)})") from None


def make_state_dir(folder: Path) -> None:
    """Create ``--state-dir`` (and its parents) if missing; exit 2 naming it when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir(exist_ok) says so only when the name is taken by something not a folder
        raise fail(
            f"--state-dir {folder}: is a file, not a folder; give a folder (it is created when missing)"
        ) from None
    except OSError as exc:
        raise fail(f"--state-dir {folder}: cannot create the folder ({reason(exc)})") from None


def switches_of(assignments: list[str]) -> dict[str, Any]:
    """The firmware switches of the ``--set KEY=VALUE`` flags, in order; exit 2 (SystemExit) naming ``--set``,
    the text given and the key when one is no ``KEY=VALUE``, names no switch or has a value the switch refuses."""
    switches = Switches()
    for assignment in assignments:
        if "=" not in assignment:
            raise fail(f"--set {assignment}: expected KEY=VALUE (a switch name, =, its value)")
        try:
            switches = switches.updated_from_text([assignment])
        except ValueError as exc:
            raise fail(f"--set {assignment}: {exc}") from None
    return switches.as_dict()


def unwritable_at_startup(error: StorageError, state_dir: Path | None) -> str:
    """The one line for a meter's folder that cannot be written while ``serve`` starts: the file or folder, why,
    and what to do (the process exits, so nothing is retried)."""
    path = Path(error.path) if error.path else state_dir
    cause = error.__cause__
    if isinstance(cause, FileExistsError) and path is not None and path.exists() and not path.is_dir():
        problem = "is a file, not a folder"
    elif isinstance(cause, IsADirectoryError):
        problem = "is a folder, not a file"
    else:
        problem = f"cannot be written ({reason(cause) if isinstance(cause, OSError) else error.message})"
    return (
        f"{path}: {problem}; serve writes each meter's folder in --state-dir {state_dir} when it starts. Make it "
        "writable (or move what is in the way), or give another --state-dir"
    )


def build_twin(args: argparse.Namespace) -> Twin:
    """The twin of the ``serve`` flags, its meters built (nothing listens yet). Exits 2 (SystemExit) naming
    the flag, the file or the folder when a switch, the fleet file or the state dir cannot be used."""
    if args.state_dir is not None:
        make_state_dir(args.state_dir)
    switches = switches_of(args.switches)
    clock = SimClock("virtual" if args.clock == "virtual" else "real", 1.0, args.epoch)
    twin = Twin(clock, bind=args.host, state_dir=args.state_dir, seed=args.seed, journal_size=args.journal_size)
    try:
        if args.fleet is not None:
            specs = load_fleet(args.fleet, args.profile, switches)
        else:
            specs = [
                MeterSpec(port=0 if args.port == 0 else args.port + index, profile=args.profile, switches=switches)
                for index in range(args.meters)
            ]
        with twin.storage_failures.held():  # a failed write here is the one line below, not a log line too
            for index, spec in enumerate(specs):
                twin.add_meter(spec, index)
    # FleetFileError or a serial used twice (ValueError); a state dir that is damaged, held by another process,
    # of another profile (UnusableFolder) or unwritable (StorageError): docs/persistence.md
    except (ValueError, UnusableFolder) as exc:
        print(f"iemdcr-sim: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except StorageError as exc:
        raise fail(unwritable_at_startup(exc, args.state_dir)) from None
    return twin


def control_port(args: argparse.Namespace) -> int:
    """The control port asked for: 8090 by default, a free one (0) with ``--port 0`` unless one was given."""
    if args.control_port is not None:
        return int(args.control_port)
    return 0 if args.port == 0 else DEFAULT_CONTROL_PORT


def announce(kind: str, fields: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps({"event": kind, **fields}), flush=True)
    else:
        print(kind + " " + " ".join(f"{key}={value}" for key, value in fields.items()), flush=True)


def freeze_startup_objects() -> None:
    """Move what startup built (modules, signing keys and tables, apps, meters) out of the cyclic GC's reach.

    Those objects live as long as the process; without this every full collection that request traffic
    triggers walks them again (bench: new-connection throughput +1-3 %).
    """
    gc.collect()
    gc.freeze()


def check_open_files(meters: int) -> None:
    """Exit with the numbers when ``meters`` meters do not fit the open-file limit (simulator/limits.py)."""
    try:
        limits.check_fleet_fits(meters)
    except limits.DescriptorBudgetError as exc:
        raise SystemExit(f"iemdcr-sim: {exc}") from None


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT. Exits 2 (SystemExit) for what ``build_twin`` and ``check_host`` refuse;
    raises CannotListen naming the host and the port that cannot be opened (a meter's or the control API's)."""
    check_host(args.host)
    try:
        token = token_from_env(args.control_token)
    except EmptyToken as exc:
        raise fail(str(exc)) from None
    limits.raise_open_file_limit()
    if args.fleet is None:
        check_open_files(args.meters)  # before building: --meters takes any number
    twin = build_twin(args)
    if args.fleet is not None:
        check_open_files(len(twin.slots))  # a fleet file's meters are counted once it is read
    twin.idle_timeout_s = args.idle_timeout
    # Handle signals before the startup lines: a supervisor may send SIGTERM as soon as it reads them.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(limits.AcceptErrorLimiter())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    app = create_control_app(twin, token=token, allow_hosts=args.allow_host, allow_origins=args.allow_origin)
    runner = limits.app_runner(app, args.idle_timeout)
    try:
        await runner.setup()  # starts the twin: its meters reserve their ports (CannotListen)
    except BaseException:
        await twin.stop()  # release the ports and folders the meters before the failed one took
        raise
    site = web.TCPSite(runner, args.host, control_port(args), reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CannotListen(args.host, control_port(args), "control API", exc) from None
    if not token and not is_loopback(args.host):
        log.warning(
            "the control API listens on %s without a token: whoever reaches its port can power meters off and "
            "reset them; set --control-token (or %s)",
            args.host,
            TOKEN_ENV,
        )
    freeze_startup_objects()
    for slot in twin.slots.values():
        announce(
            "meter",
            {
                "serial": slot.meter.serial,
                "url": slot.url,
                "fingerprint": slot.meter.signer.fingerprint,
                "model": slot.meter.profile.MM,
            },
            args.log_format,
        )
    announce("control", {"url": f"http://{args.host}:{site.port}", "clock": twin.clock.mode}, args.log_format)
    await stopping.wait()
    log.info("shutting down")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        problem = serve_args_problem(args)
        if problem is not None:
            parser.error(problem)
        configure_logging(args.log_format)
        try:
            asyncio.run(serve(args))
        except CannotListen as exc:
            print(f"iemdcr-sim: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"iemdcr-sim: cannot listen: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "conformance":
        return conformance_cli.run(args)
    if args.command == "scenario":
        return scenario_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
