"""``edgebill init``, ``config check`` and ``keygen``: setting up an installation."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from daemon.commands.common import CliError, SubParsers, actor, command, engine, group, read_secret_file, transaction
from daemon.config import Settings, default_config_path, load_settings
from daemon.config.secrets import write_private
from daemon.db import current_revision, upgrade
from daemon.security import create_key_file
from daemon.services import routers, users


def register(sub: SubParsers) -> None:
    p = command(sub, "init", cmd_init, "create or upgrade the database schema, sync routers, create the first admin")
    p.add_argument("--admin-user", default="admin", metavar="NAME", help="first admin's user name (default admin)")
    p.add_argument("--admin-password-file", metavar="FILE", help="file holding the first admin's password (- = stdin)")

    config = group(sub, "config", "configuration file tools")
    p = command(config, "check", cmd_config_check, "validate a configuration file", needs_settings=False)
    p.add_argument("path", nargs="?", metavar="PATH", help="the file (default: the one edgebill would use)")

    p = command(sub, "keygen", cmd_keygen, "write a new random key file (mode 0600)", needs_settings=False)
    p.add_argument("path", metavar="PATH", help="file to create; an existing file is never overwritten")
    p.add_argument("--web", action="store_true", help="a web session key instead of a data encryption key")


def cmd_init(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    password = read_secret_file(args.admin_password_file, "admin password") if args.admin_password_file else None
    if password is not None:
        users.check_new_credentials(args.admin_user, password)
    db = engine(args)
    before = current_revision(db)
    revision = upgrade(db)
    with transaction(args) as session:
        synced = routers.sync_routers(session, settings, actor())
        created = None
        if users.count_users(session) == 0:
            if password is None:
                raise CliError("no user exists yet: give --admin-password-file to create the first admin")
            created = users.create_user(session, actor(), args.admin_user, password, "admin")
    if before != revision:
        print(f"database schema migrated to revision {revision} (was {before or 'empty'})")
    else:
        print(f"database schema is up to date (revision {revision})")
    print(
        f"routers: {len(synced.added)} added, {len(synced.updated)} updated, {len(synced.retired)} retired, "
        f"{len(synced.unchanged)} unchanged"
    )
    if created is not None:
        print(f"admin user {created.username!r} created")
    elif password is not None:
        print("users already exist; no admin created")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    path = args.path or args.config or default_config_path()
    load_settings(path)
    print(f"{path}: ok")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if args.web:
        try:
            write_private(path, secrets.token_hex(32).encode("ascii") + b"\n", exclusive=True)
        except FileExistsError:
            raise CliError(f"{path} already exists; refusing to overwrite it") from None
        except OSError as exc:
            raise CliError(f"cannot create {path}: {exc.strerror or exc}") from None
    else:
        try:
            create_key_file(path)
        except OSError as exc:
            raise CliError(f"cannot create {path}: {exc.strerror or exc}") from None
    print(f"{path}: new {'web session' if args.web else 'data encryption'} key written (mode 0600)")
    return 0
