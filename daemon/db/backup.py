"""Whole-database backups and restores, with each backend's own tools.

SQLite: SQLite's online backup API copies the database page by page while the daemon keeps running, into a
single database file; a restore copies such a file back over the live database with the same API.
PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean --single-transaction`` (the
``postgresql-client`` package, of the server's major version or newer). The connection settings reach them in
the ``PG*`` environment variables, so a password never appears in a process listing.

A backup is written to a temporary name beside ``path`` (mode 0600) and renamed when complete, so ``path`` never
holds half a backup; an existing ``path`` is refused. A restore checks the file is a backup of the right kind before it
touches the database, and the caller decides whether the database may be replaced (:func:`other_connections`,
:func:`has_schema`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Final
from urllib.parse import quote

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from daemon.db.engine import normalize_url
from daemon.db.migrate import current_revision

__all__ = ["BackupError", "backup", "has_schema", "other_connections", "restore"]

log = logging.getLogger(__name__)

_SQLITE_MAGIC: Final = b"SQLite format 3\0"
_PGDUMP_MAGIC: Final = b"PGDMP"
_TIMEOUT: Final = 3600


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, in one line."""


def backup(url: str | URL, path: Path) -> None:
    """Write a complete backup of the database at ``url`` to ``path`` (which must not exist)."""
    parsed = normalize_url(url)
    if path.exists():
        raise BackupError(f"{path} exists: remove it or choose another name")
    if not path.parent.is_dir():
        raise BackupError(f"folder {path.parent} does not exist")
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    # Readable by its owner only: a backup holds password hashes and the encrypted PPPoE passwords.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        if parsed.get_backend_name() == "sqlite":
            _sqlite_backup(_sqlite_path(parsed), partial)
        else:
            _run(["pg_dump", "--format=custom", f"--file={partial}"], parsed)
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    log.info("database backed up to %s", path)


def restore(url: str | URL, path: Path) -> None:
    """Replace the database at ``url`` by the backup in ``path``."""
    parsed = normalize_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    if sqlite and not head.startswith(_SQLITE_MAGIC):
        raise BackupError(f"{path} is not an SQLite database file (an `edgebill db backup` of an SQLite database)")
    if not sqlite and not head.startswith(_PGDUMP_MAGIC):
        raise BackupError(f"{path} is not a PostgreSQL custom-format dump (an `edgebill db backup` of PostgreSQL)")
    if sqlite:
        _sqlite_restore(path, _sqlite_path(parsed))
    else:
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={parsed.database}",
                str(path),
            ],
            parsed,
        )
    log.info("database restored from %s", path)


def has_schema(engine: Engine) -> bool:
    """True when the database holds edgebill's tables (a restore would replace them)."""
    return current_revision(engine) is not None


def other_connections(engine: Engine) -> int:
    """How many other sessions are connected to the database: a running daemon or dashboard holds some.

    PostgreSQL only: SQLite keeps no list of its connections (0).
    """
    if engine.dialect.name != "postgresql":
        return 0
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )
    with engine.connect() as conn:
        return int(conn.execute(text(query)).scalar_one())


def _sqlite_path(url: URL) -> Path:
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore")
    return Path(database)


def _sqlite_open(path: Path, mode: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path))}?mode={mode}", uri=True, timeout=30)


def _sqlite_backup(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"the database file {source} does not exist")
    try:
        with contextlib.closing(_sqlite_open(source, "ro")) as src, contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None


def _sqlite_restore(source: Path, target: Path) -> None:
    try:
        with contextlib.closing(_sqlite_open(source, "ro")) as src:
            tables = {row[0] for row in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                raise BackupError(f"{source} holds no edgebill database")
            checked = src.execute("PRAGMA integrity_check").fetchone()
            if checked is None or checked[0] != "ok":
                raise BackupError(f"{source} is damaged: {checked[0] if checked else 'integrity check failed'}")
            with contextlib.closing(sqlite3.connect(target, timeout=30)) as dst:
                src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {source} into {target}: {exc}") from None


def _pg_environment(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
        ("PGSSLMODE", url.query.get("sslmode")),
    ):
        if value is not None and not isinstance(value, tuple):
            env[name] = str(value)
    return env


def _run(command: list[str], url: URL) -> None:
    tool = shutil.which(command[0])
    if tool is None:
        raise BackupError(f"{command[0]} is not installed (Debian: apt-get install postgresql-client)")
    try:
        done = subprocess.run(
            [tool, *command[1:]],
            env=_pg_environment(url),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"{command[0]} did not finish within {_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{command[0]} failed: {lines[0] if lines else f'exit status {done.returncode}'}")
