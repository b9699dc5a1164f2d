"""Engines and sessions, configured the same way wherever edgebill opens its database."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from daemon.config.secrets import write_private

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "make_engine", "normalize_url", "session_factory"]

log = logging.getLogger(__name__)

#: How long an SQLite connection waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` and ``postgres://`` URLs get the psycopg 3 driver.

    Raises ``ValueError`` with a one-line reason for anything that is not an SQLite or PostgreSQL URL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a long message
        raise ValueError(f"invalid database URL: {exc}") from exc
    if parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql")
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.drivername != "postgresql+psycopg":
            raise ValueError(f"unsupported PostgreSQL driver {parsed.drivername!r}: use postgresql+psycopg://")
    elif backend == "sqlite":
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise ValueError(f"unsupported SQLite driver {parsed.drivername!r}: use sqlite:///PATH")
    else:
        raise ValueError(f"unsupported database {backend!r}: edgebill runs on PostgreSQL or SQLite")
    return parsed


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: a transaction that reads then writes can never fail
        # half-way with SQLITE_BUSY because another writer got in between; waiting writers honour
        # busy_timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_private(database: str) -> None:
    """Create the SQLite file ``database`` owner-only (0600) before SQLite does, when it does not exist yet.

    SQLite would create it readable by all users, and gives its ``-wal`` and ``-shm`` files the mode of the
    database file: they hold password hashes and customer data. An existing file keeps its mode (the
    administrator's choice), with a warning when every user may read it.
    """
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite's own error ("unable to open database file") says it
    try:
        write_private(path, b"", exclusive=True)
        log.info("created the database file %s (mode 0600)", path)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IROTH | stat.S_IWOTH):
            log.warning("database file %s is accessible to all users (mode %04o); run chmod o-rwx on it", path, mode)
    except OSError:
        pass  # likewise


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """Create the engine for ``url`` (``sqlite:///PATH`` or ``postgresql+psycopg://...``).

    SQLite connections get foreign keys on, WAL journalling, a busy timeout and transactions that take the
    write lock when they begin; PostgreSQL connections are checked before use.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if not in_memory and "mode" not in parsed.query:
            _create_private(database)
        engine = create_engine(parsed, echo=echo)
        _configure_sqlite(engine, in_memory=in_memory)
    else:
        engine = create_engine(parsed, echo=echo, pool_pre_ping=True)
    log.debug("database engine for %s", parsed.render_as_string(hide_password=True))
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` whose objects stay readable after commit.

    Use ``with factory.begin() as session:`` for one transaction: committed on success, rolled back on error.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
