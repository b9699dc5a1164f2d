"""``edgebill reconcile``: show and apply what the routers need to match the database.

It prints the plan for each router (like a terraform plan: ``+`` add, ``~`` change, ``-`` remove) and applies it
unless ``--dry-run``; with ``--service ID`` (repeatable) it reads and writes only those services' entries, on their
routers. Routers are reconciled concurrently. It prints each conflict (an entry the router does not carry, and
why) and exits 1 when a router failed or conflicts remain.
"""

from __future__ import annotations

import argparse

from daemon.commands.common import CliError, SubParsers, checked_engine, command, positive_int, print_json
from daemon.config import ConfigError, Settings
from daemon.db import session_factory
from daemon.reconcile import ReconcileReport, reconcile_all, reconcile_router
from daemon.services.services import services_by_router


def register(sub: SubParsers) -> None:
    p = command(sub, "reconcile", cmd_reconcile, "show and apply what the routers need to match the database")
    p.add_argument("--router", metavar="NAME", help="one router (default: all, concurrently)")
    p.add_argument(
        "--service",
        type=positive_int,
        action="append",
        dest="services",
        metavar="ID",
        help="only this service's entries (repeatable); its router's other subscribers are left as they are",
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    p.add_argument("--json", action="store_true", help="print JSON")


def print_report(report: ReconcileReport) -> None:
    """One router's reconcile: the summary line, the plan, the conflicts, and what happens next."""
    print(report.summary())
    for line in report.plan:
        print(f"  {line}")
    for conflict in report.conflicts:
        print(f"  ! conflict: {conflict}")
    if report.error:  # the summary line carries it
        return
    if report.conflicts:
        n = len(report.conflicts)
        print(f"  {n} conflict{'' if n == 1 else 's'}: not on the router until the cause is fixed")
    elif not report.plan:
        print("  no changes: the router matches the database")
    if report.plan and report.dry_run:
        print("  (dry run: run without --dry-run to apply)")


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    sessions = session_factory(checked_engine(args))  # refuses an old schema before any router is contacted
    if args.router:
        try:
            settings.router(args.router)
        except ConfigError as exc:
            raise CliError(exc.reason) from None
    if args.services:
        with sessions() as session:
            routers = services_by_router(session, args.services)
        for name, ids in routers.items():
            if args.router and name != args.router:
                raise CliError(f"service {ids[0]} is on router {name!r}, not {args.router!r}")
        reports = [
            reconcile_router(sessions, settings, name, dry_run=args.dry_run, services=ids)
            for name, ids in routers.items()
        ]
    elif args.router:
        reports = [reconcile_router(sessions, settings, args.router, dry_run=args.dry_run)]
    else:
        reports = reconcile_all(sessions, settings, dry_run=args.dry_run)
    if args.json:
        print_json([r.to_json() for r in reports])
    else:
        for report in reports:
            print_report(report)
    # Conflicts fail the command as errors do: what they keep off the router is not done.
    return 0 if all(r.clean for r in reports) else 1
