"""What every ``edgebill`` command shares: errors, the database transaction, argument types and printers.

A command handler takes the parsed ``args`` and returns its exit code. With ``needs_settings`` the loaded
:class:`~daemon.config.Settings` are in ``args.settings``; :func:`transaction` opens the configured database
(refused unless its schema is the one this edgebill needs) and keeps the engine on ``args._engine``, which
:func:`daemon.cli.main` disposes of. Output is a table or ``key  value`` lines, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol, TypeAlias, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.config import Settings
from daemon.config.files import FileProblem, decode_text, read_user_file
from daemon.db import current_revision, head_revision, make_engine, session_factory
from daemon.db.models import MAX_ID

__all__ = [
    "PROG",
    "CliError",
    "Handler",
    "SubParsers",
    "actor",
    "as_of_option",
    "checked_engine",
    "command",
    "engine",
    "group",
    "parse_date",
    "positive_int",
    "print_fields",
    "print_json",
    "print_listing",
    "print_table",
    "read_secret_file",
    "report",
    "show",
    "transaction",
]

PROG = "edgebill"

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(Exception):
    """A command that cannot run; the message is printed as ``edgebill: error: MESSAGE``."""


class Record(Protocol):
    """A service-layer record: it knows its JSON shape."""

    def to_json(self) -> Mapping[str, Any]: ...


R = TypeVar("R", bound=Record)


# -- the database ---------------------------------------------------------------------------------------------


def actor() -> str:
    """Who is acting, for the audit log: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def engine(args: argparse.Namespace) -> Engine:
    """The configured database's engine, made once per command (kept on ``args._engine``), its schema unchecked."""
    made: Engine | None = getattr(args, "_engine", None)
    if made is None:
        settings: Settings = args.settings
        made = make_engine(settings.database.url)
        args._engine = made
    return made


def _check_schema(db: Engine) -> None:
    at = current_revision(db)
    head = head_revision()
    if at is None:
        raise CliError("the database has no edgebill schema yet; run: edgebill init")
    if at != head:
        raise CliError(f"the database schema is at revision {at}, this edgebill needs {head}; run: edgebill init")


def checked_engine(args: argparse.Namespace) -> Engine:
    """The configured database, refused unless its schema is the one this edgebill needs."""
    db = engine(args)
    _check_schema(db)
    return db


@contextlib.contextmanager
def transaction(args: argparse.Namespace) -> Iterator[Session]:
    """One transaction on the configured database: committed when the block succeeds, else rolled back."""
    with session_factory(checked_engine(args)).begin() as session:
        yield session


#: The largest password file read (a password, not a document).
MAX_SECRET_BYTES = 4096


def read_secret_file(path: str, what: str) -> str:
    """A secret from a file (``-`` for standard input), without its trailing newline.

    The file must be UTF-8 text without a byte order mark, at most :data:`MAX_SECRET_BYTES` bytes, and hold
    something: otherwise :class:`CliError`, naming the file and ``what`` it was to hold.
    """
    try:
        if path == "-":
            data = sys.stdin.read(MAX_SECRET_BYTES + 1)
            if len(data) > MAX_SECRET_BYTES:
                raise FileProblem(f"is too large (more than {MAX_SECRET_BYTES} bytes)")
        else:
            data = decode_text(read_user_file(Path(path), limit=MAX_SECRET_BYTES))
    except FileProblem as exc:
        raise CliError(f"{what} file {path}: {exc}") from None
    except UnicodeDecodeError:  # standard input that is not UTF-8
        raise CliError(f"{what} file {path}: not valid UTF-8") from None
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if not data:
        raise CliError(f"{what} file {path} is empty")
    if "\x00" in data:
        raise CliError(f"{what} file {path} holds a NUL byte: is it a text file?")
    return data


# -- output ---------------------------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-aligned columns two spaces apart, ``None`` as an empty cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def print_fields(record: Mapping[str, Any]) -> None:
    """One ``key  value`` line per field: booleans as yes/no, lists and mappings as JSON."""
    width = max(len(key) for key in record)
    for key, value in record.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        print(f"{key.ljust(width)}  {'' if value is None else value}")


def show(args: argparse.Namespace, view: Mapping[str, Any]) -> None:
    """One record: JSON with ``--json``, else one ``key  value`` line per field."""
    if args.json:
        print_json(view)
    else:
        print_fields(view)


def report(args: argparse.Namespace, view: Mapping[str, Any], message: str) -> None:
    """What a command did: ``view`` as JSON with ``--json``, else the one-line ``message``."""
    if args.json:
        print_json(view)
    else:
        print(message)


def print_listing(
    args: argparse.Namespace, records: Sequence[R], headers: Sequence[str], row: Callable[[R], Sequence[object]]
) -> int:
    """A listing: the records' JSON with ``--json``, else a table of ``headers`` with one ``row`` per record."""
    if args.json:
        print_json([record.to_json() for record in records])
    else:
        print_table(headers, [row(record) for record in records])
    return 0


# -- arguments ------------------------------------------------------------------------------------------------


def parse_date(text: str) -> date:
    """An argument type: a ``YYYY-MM-DD`` day."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: expected YYYY-MM-DD") from None


def positive_int(text: str) -> int:
    """An argument type: a record id (ASCII digits, 1..:data:`MAX_ID`, what an id column holds)."""
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 0 < int(text) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"invalid id {text[:40]!r}: expected a whole number from 1 to {MAX_ID}")
    return int(text)


def command(
    sub: SubParsers,
    name: str,
    handler: Handler,
    help_text: str,
    *,
    needs_settings: bool = True,
    json_flag: bool = False,
) -> argparse.ArgumentParser:
    """Add the command ``name`` to ``sub``, run by ``handler``; ``json_flag`` adds ``--json``."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler, needs_settings=needs_settings)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def group(sub: SubParsers, name: str, help_text: str) -> SubParsers:
    """Add the command group ``name`` (``edgebill NAME COMMAND``) to ``sub``; its sub-commands go in the result."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name.replace('-', '_')}_command", required=True, metavar="COMMAND")


def as_of_option(parser: argparse.ArgumentParser) -> None:
    """``--as-of DAY``, for the billing and dunning runs."""
    parser.add_argument(
        "--as-of", type=parse_date, metavar="YYYY-MM-DD", help="act as on this day (default: today, billing time zone)"
    )
