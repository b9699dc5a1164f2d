"""``edgebill router list|check``: the configured routers."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import timedelta

from daemon.commands.common import CliError, SubParsers, command, group, print_json, print_listing, transaction
from daemon.config import Settings
from daemon.services import routers


def register(sub: SubParsers) -> None:
    commands = group(sub, "router", "configured routers")
    p = command(commands, "list", cmd_router_list, "list routers", json_flag=True)
    p.add_argument("--all", action="store_true", help="include retired routers")
    p = command(commands, "check", cmd_router_check, "check that routers can be reached", json_flag=True)
    p.add_argument("name", nargs="?", metavar="NAME", help="one router (default: all)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="override the router's configured timeout")


def cmd_router_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = routers.list_routers(session, include_retired=args.all)
    return print_listing(
        args,
        found,
        ("NAME", "KIND", "ADDRESS", "SITE", "STATUS", "LAST SEEN", "RETIRED"),
        lambda r: (
            r.name,
            r.kind,
            f"{r.host}:{r.port}",
            r.site,
            r.status,
            r.last_seen_at.isoformat(timespec="seconds") if r.last_seen_at else "never",
            "yes" if r.retired else "",
        ),
    )


def cmd_router_check(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    targets = [settings.router(args.name)] if args.name else list(settings.routers)
    if not targets:
        raise CliError("no routers are configured")
    if args.timeout is not None:
        targets = [dataclasses.replace(t, timeout=timedelta(seconds=args.timeout)) for t in targets]
    results = [routers.check_router(target) for target in targets]
    if args.json:
        print_json([r.to_json() for r in results])
    else:
        for result in results:
            print(result)
    return 0 if all(r.ok for r in results) else 1
