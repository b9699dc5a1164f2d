"""The ``edgebill`` command line: the parser built from :mod:`daemon.commands`, and :func:`main`.

``edgebill [--config PATH] COMMAND ...``; the configuration file is ``--config``, else ``$EDGEBILL_CONFIG``, else
:func:`daemon.config.default_config_path`. Every command runs in one database transaction: it either completes
or changes nothing. Failures print one line, ``edgebill: error: REASON``, on stderr and exit with 1 (2 for
usage errors). Listings and ``add`` commands take ``--json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from daemon.commands import (
    billing,
    credit_note,
    customer,
    dunning,
    init,
    invoice,
    payment,
    plan,
    process,
    reconcile,
    router,
    service,
    token,
    user,
)
from daemon.commands.common import PROG, CliError, Handler, SubParsers
from daemon.config import ConfigError, default_config_path, load_settings
from daemon.db.errors import unavailable_reason
from daemon.security import SecretError
from daemon.services import ServiceError

__all__ = ["COMMANDS", "build_parser", "main"]

#: each module's ``register``, in the order ``edgebill --help`` lists the commands
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    init.register,  # init, config check, keygen
    router.register,
    plan.register,
    customer.register,
    service.register,
    payment.register,
    invoice.register,
    user.register,
    token.register,
    reconcile.register,
    billing.register,
    dunning.register,
    credit_note.register,
    process.register,  # run, web, demo, lab: the long-running commands
)


def build_parser() -> argparse.ArgumentParser:
    """The ``edgebill`` argument parser; each command sets ``handler`` and ``needs_settings``."""
    parser = argparse.ArgumentParser(prog=PROG, description="ISP edge billing and provisioning.")
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=os.environ.get("EDGEBILL_CONFIG") or None,
        help="configuration file (default: $EDGEBILL_CONFIG, ./edgebill.toml, /etc/edgebill/edgebill.toml)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    elif verbosity > 0:
        root.setLevel(level)


def _one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


def main(argv: list[str] | None = None) -> int:
    """Run one ``edgebill`` command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    _setup_logging(args.verbose)
    handler: Handler = args.handler
    try:
        if getattr(args, "needs_settings", False):
            args.settings = load_settings(args.config or default_config_path())
        return handler(args)
    except (CliError, ServiceError, ConfigError, SecretError) as exc:
        message = str(exc)
    except IntegrityError as exc:
        message = f"the change conflicts with existing data: {_one_line(str(exc.orig))}"
    except (DBAPIError, PoolTimeout) as exc:  # read-only, unreachable: say so; anything else is a bug
        reason = unavailable_reason(exc)
        if reason is None and not isinstance(exc, OperationalError):
            raise
        message = reason or f"database error: {_one_line(str(exc))}"
    finally:
        engine: Engine | None = getattr(args, "_engine", None)
        if engine is not None:
            engine.dispose()
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return 1
