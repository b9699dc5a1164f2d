"""``edgebill billing run``: invoice everything due, idempotently.

It exits with 1 when a customer could not be billed (each is printed on stderr; the others are billed).
"""

from __future__ import annotations

import argparse
import sys

from daemon.billing.run import run_billing
from daemon.commands.common import SubParsers, actor, as_of_option, checked_engine, command, group, print_json
from policies.money import total


def register(sub: SubParsers) -> None:
    commands = group(sub, "billing", "invoicing")
    as_of_option(command(commands, "run", cmd_billing_run, "invoice everything due (idempotent)", json_flag=True))


def cmd_billing_run(args: argparse.Namespace) -> int:
    """``edgebill billing run [--as-of DAY] [--json]``."""
    result = run_billing(checked_engine(args), args.settings, as_of=args.as_of, actor=actor())
    if args.json:
        print_json(result.to_json())
    else:
        invoiced = total(
            (bill.total for bill in result.invoices if bill.total is not None), args.settings.billing.currency
        )
        print(
            f"billing run {result.as_of}: {result.customers} customers, {len(result.invoices)} invoices "
            f"({invoiced}), "
            f"{len(result.lapsed_services)} prepaid services lapsed"
        )
        for customer_id, error in result.errors:
            print(f"customer {customer_id} skipped: {error}", file=sys.stderr)
    return 1 if result.errors else 0
