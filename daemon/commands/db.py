"""``edgebill db backup PATH`` and ``edgebill db restore PATH [--force]``: the whole database, to and from a file.

SQLite is copied with SQLite's online backup API, PostgreSQL with ``pg_dump``/``pg_restore`` in their custom
format (see :mod:`daemon.db.backup`). A backup may be taken while the daemon runs. A restore replaces every
table: it asks for ``--force`` when the database holds edgebill's tables, and on PostgreSQL it refuses while
other sessions (a running daemon or dashboard) are connected, even with ``--force``. Stop them first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.commands.common import CliError, SubParsers, command, engine, group
from daemon.db.backup import BackupError, backup, has_schema, other_connections, restore


def register(sub: SubParsers) -> None:
    commands = group(sub, "db", "database backups")
    p = command(commands, "backup", cmd_backup, "write a complete backup of the database to a new file")
    p.add_argument("path", type=Path, metavar="PATH", help="the backup file to create (must not exist)")
    p = command(commands, "restore", cmd_restore, "replace the database by a backup (stop the daemon first)")
    p.add_argument("path", type=Path, metavar="PATH", help="a file written by `edgebill db backup`")
    p.add_argument("--force", action="store_true", help="replace a database that holds data")


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        backup(args.settings.database.url, args.path)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"backup written to {args.path} ({args.path.stat().st_size} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    db = engine(args)
    if not args.path.is_file():
        raise CliError(f"no such backup file: {args.path}")
    connected = other_connections(db)
    if connected:
        raise CliError(
            f"{connected} other session(s) are connected to the database (a running daemon or dashboard?): "
            "stop them (systemctl stop edgebill edgebill-web) before restoring"
        )
    if has_schema(db) and not args.force:
        raise CliError(
            "the database holds edgebill's tables, which the restore replaces: stop the daemon and the dashboard, "
            "then repeat with --force"
        )
    db.dispose()  # no connection of ours stays open across the restore
    try:
        restore(args.settings.database.url, args.path)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"database restored from {args.path}")
    return 0
