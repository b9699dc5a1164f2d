"""``edgebill lab routeros``: run an emulated RouterOS router until SIGINT/SIGTERM, with a real-time clock."""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path
from types import FrameType

from lab.routeros.emulator import RouterOSEmulator
from lab.routeros.values import parse_version

logger = logging.getLogger(__name__)


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _version(text: str) -> str:
    try:
        parse_version(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a RouterOS version such as 7.16, got {text!r}") from None
    return text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``."""
    parser.add_argument(
        "--listen",
        type=_endpoint,
        default=("127.0.0.1", 8728),
        metavar="HOST:PORT",
        help="API address (default 127.0.0.1:8728)",
    )
    parser.add_argument(
        "--tls-listen",
        type=_endpoint,
        default=None,
        metavar="HOST:PORT",
        help="API-SSL address (self-signed certificate unless --tls-cert is given)",
    )
    parser.add_argument("--tls-cert", default=None, help="PEM certificate for API-SSL")
    parser.add_argument("--tls-key", default=None, help="PEM private key for API-SSL")
    parser.add_argument("--user", default="admin", help="API user name (default admin)")
    parser.add_argument(
        "--password-file", type=Path, required=True, help="file whose first line is the user's password"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated traffic (default 0)")
    parser.add_argument("--state", type=Path, default=None, help="JSON file keeping the configuration")
    parser.add_argument(
        "--version",
        dest="routeros_version",
        type=_version,
        default="7.16",
        metavar="VERSION",
        help="RouterOS version to emulate (default 7.16)",
    )
    parser.add_argument("--identity", default="MikroTik", help="system identity (default MikroTik)")
    parser.add_argument(
        "--default-remote-range",
        default=None,
        metavar="CIDR",
        help="addresses for subscribers whose secret and profile give none (default: such sessions fail)",
    )
    parser.add_argument(
        "--redial-delay",
        type=float,
        default=5.0,
        help="seconds before a disconnected subscriber dials again (default 5)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM. Returns the process exit code."""
    try:
        password = args.password_file.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError) as error:
        logger.error("cannot read the password file %s: %s", args.password_file, error)
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        logger.error("--tls-cert and --tls-key go together")
        return 2
    if args.tls_listen is not None and args.tls_listen[0] != args.listen[0]:
        logger.error("--tls-listen must use the same host as --listen")
        return 2
    host, port = args.listen
    try:
        emulator = RouterOSEmulator(
            users={args.user: password},
            host=host,
            port=port,
            tls_port=args.tls_listen[1] if args.tls_listen is not None else None,
            version=args.routeros_version,
            seed=args.seed,
            identity=args.identity,
            state_file=args.state,
            redial_delay=args.redial_delay,
            realtime=True,
            default_remote_range=args.default_remote_range,
            tls_certificate=args.tls_cert,
            tls_key=args.tls_key,
        )
        emulator.start()
    except (OSError, ValueError) as error:
        logger.error("cannot start the RouterOS emulator: %s", error)
        return 1
    received: list[int] = []

    def on_signal(number: int, _frame: FrameType | None) -> None:
        received.append(number)  # nothing that takes a lock: the main thread may hold it when the signal lands

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(
        f"RouterOS {args.routeros_version} emulator on {host}:{emulator.port}"
        + (f", API-SSL on {host}:{emulator.tls_port}" if emulator.tls_port else ""),
        flush=True,
    )
    try:
        while not received:
            time.sleep(0.2)
        logger.info("received signal %d, stopping", received[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
    return 0
