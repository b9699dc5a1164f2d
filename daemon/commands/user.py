"""``edgebill user add|list``: dashboard and API users."""

from __future__ import annotations

import argparse

from daemon.commands.common import (
    SubParsers,
    actor,
    command,
    group,
    print_listing,
    read_secret_file,
    report,
    transaction,
)
from daemon.services import users


def register(sub: SubParsers) -> None:
    commands = group(sub, "user", "dashboard and API users")
    p = command(commands, "add", cmd_user_add, "add a user", json_flag=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=("admin", "support", "readonly"))
    p.add_argument("--password-file", required=True, metavar="FILE", help="file holding the password (- = stdin)")
    command(commands, "list", cmd_user_list, "list users", json_flag=True)


def cmd_user_add(args: argparse.Namespace) -> int:
    password = read_secret_file(args.password_file, "password")
    with transaction(args) as session:
        user = users.create_user(session, actor(), args.name, password, args.role)
    report(args, user.to_json(), f"user {user.username!r} added (id {user.id}, role {user.role})")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = users.list_users(session)
    return print_listing(
        args,
        found,
        ("ID", "USER", "ROLE", "ACTIVE", "LAST LOGIN"),
        lambda u: (
            u.id,
            u.username,
            u.role,
            "yes" if u.active else "no",
            u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never",
        ),
    )
