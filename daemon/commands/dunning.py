"""``edgebill dunning run``: apply the dunning ladder to every customer and send the reminders.

It exits with 1 when a customer could not be processed (each is printed on stderr; the others are).
"""

from __future__ import annotations

import argparse
import sys

from daemon.billing.account import run_dunning
from daemon.commands.common import SubParsers, actor, as_of_option, checked_engine, command, group, print_json


def register(sub: SubParsers) -> None:
    commands = group(sub, "dunning", "overdue accounts")
    as_of_option(
        command(
            commands,
            "run",
            cmd_dunning_run,
            "apply the dunning ladder to every customer, send reminders",
            json_flag=True,
        )
    )


def cmd_dunning_run(args: argparse.Namespace) -> int:
    """``edgebill dunning run [--as-of DAY] [--json]``."""
    result = run_dunning(checked_engine(args), args.settings, as_of=args.as_of, actor=actor())
    if args.json:
        print_json(result.to_json())
        return 1 if result.errors else 0
    summary = result.to_json()
    print(
        f"dunning run {result.as_of}: {summary['customers']} customers, "
        f"{summary['services_changed']} services changed, {summary['emails_sent']} e-mails sent"
    )
    for item in result.customers:
        for change in item.changes:
            print(f"service {change.service_id}: {change.before} -> {change.after} ({change.reason})")
        if item.email_error:
            print(f"customer {item.customer_id}: e-mail not sent: {item.email_error}", file=sys.stderr)
    for customer_id, error in result.errors:
        print(f"customer {customer_id} skipped: {error}", file=sys.stderr)
    return 1 if result.errors else 0
