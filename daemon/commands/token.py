"""``edgebill token create|list|revoke``: API tokens; a token's secret is printed once, when it is created."""

from __future__ import annotations

import argparse
import sys

from daemon.commands.common import (
    SubParsers,
    actor,
    command,
    group,
    positive_int,
    print_json,
    print_listing,
    transaction,
)
from daemon.services import users


def register(sub: SubParsers) -> None:
    commands = group(sub, "token", "API tokens")
    p = command(commands, "create", cmd_token_create, "create an API token (printed once)", json_flag=True)
    p.add_argument("user", metavar="USER")
    p.add_argument("name", metavar="NAME", help="what the token is for, e.g. billing-export")
    p = command(commands, "list", cmd_token_list, "list API tokens (never their secrets)", json_flag=True)
    p.add_argument("user", nargs="?", metavar="USER")
    p = command(commands, "revoke", cmd_token_revoke, "revoke an API token")
    p.add_argument("id", type=positive_int, metavar="ID")


def cmd_token_create(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        issued = users.create_token(session, actor(), args.user, args.name)
    if args.json:
        print_json({**issued.record.to_json(), "token": issued.token})
    else:
        print(issued.token)
        print(
            f"API token {issued.record.name!r} (id {issued.record.id}) for {issued.record.username}; "
            "it is shown only now",
            file=sys.stderr,
        )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = users.list_tokens(session, args.user)
    return print_listing(
        args,
        found,
        ("ID", "USER", "NAME", "CREATED", "LAST USED", "REVOKED"),
        lambda t: (
            t.id,
            t.username,
            t.name,
            t.created_at.isoformat(timespec="seconds"),
            t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never",
            t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
        ),
    )


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        token = users.revoke_token(session, actor(), args.id)
    print(f"API token {token.name!r} (id {token.id}) of {token.username} revoked")
    return 0
