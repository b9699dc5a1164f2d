"""Database faults that are not the user's doing, told apart from the rest: a read-only or unreachable database.

:func:`unavailable_reason` turns such an error into one line an administrator can act on (``the database is
read-only: attempt to write a readonly database``); the dashboard answers it with a 503, the CLI prints it. A
read-only database still serves reads: bookkeeping writes made while reading (when a token was last used) go
through :func:`best_effort`, which skips them there with one logged warning per process.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from typing import Final

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

__all__ = ["READ_ONLY", "UNAVAILABLE", "best_effort", "fault_of", "unavailable_reason"]

log = logging.getLogger(__name__)

#: :func:`fault_of` kinds.
READ_ONLY: Final = "read-only"
UNAVAILABLE: Final = "unavailable"

#: SQLite result codes (``sqlite_errorname``, extended codes included by prefix) of a database that cannot serve
#: now: it cannot be opened, is locked too long, is full, or the disk fails.
_SQLITE_UNAVAILABLE: Final = ("SQLITE_CANTOPEN", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR")
#: PostgreSQL SQLSTATE classes and codes of a server that cannot serve now: connection exceptions, too many
#: connections or no room, the server shutting down or starting up.
_PG_UNAVAILABLE: Final = ("08", "53", "57P01", "57P02", "57P03")
_PG_READ_ONLY: Final = "25006"  # read_only_sql_transaction

_warned: set[str] = set()
_warned_lock = threading.Lock()


def fault_of(exc: BaseException) -> str | None:
    """:data:`READ_ONLY`, :data:`UNAVAILABLE`, or ``None`` for any other error (a bug, a constraint...)."""
    if isinstance(exc, PoolTimeout):
        return UNAVAILABLE
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        name = getattr(orig, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_READONLY"):
            return READ_ONLY
        return UNAVAILABLE if name.startswith(_SQLITE_UNAVAILABLE) else None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == _PG_READ_ONLY:
        return READ_ONLY
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_UNAVAILABLE):
        return UNAVAILABLE
    if exc.connection_invalidated or (sqlstate is None and type(orig).__name__ == "OperationalError"):
        return UNAVAILABLE  # psycopg's failures to connect carry no SQLSTATE
    return None


def _first_line(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def unavailable_reason(exc: BaseException) -> str | None:
    """One line saying why the database cannot serve (``the database is read-only: ...``), else ``None``."""
    fault = fault_of(exc)
    if fault is None:
        return None
    return f"the database is {fault}: {_first_line(exc)}"


def _warn_once(key: str, message: str, *args: object) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


@contextlib.contextmanager
def best_effort(session: Session, what: str) -> Iterator[None]:
    """Run the block's writes in a savepoint; on a read-only database, undo them and go on (warning once).

    For bookkeeping made while serving a read (``what``: "the API token's last use"), which must never turn
    the read into a failure. Any other error is raised.
    """
    try:
        with session.begin_nested():
            yield
            session.flush()
    except DBAPIError as exc:
        if fault_of(exc) != READ_ONLY:
            raise
        _warn_once(what, "%s is not recorded: %s", what, unavailable_reason(exc))
