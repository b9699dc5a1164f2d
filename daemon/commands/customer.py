"""``edgebill customer add|list|show|balance``: customers and what they owe."""

from __future__ import annotations

import argparse

from daemon.billing.documents import settle
from daemon.commands.common import (
    SubParsers,
    actor,
    command,
    group,
    positive_int,
    print_json,
    print_listing,
    report,
    show,
    transaction,
)
from daemon.config import Settings
from daemon.services import customers, ledger, services


def register(sub: SubParsers) -> None:
    commands = group(sub, "customer", "customers")
    p = command(commands, "add", cmd_customer_add, "add a customer", json_flag=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--email")
    p.add_argument("--phone")
    p.add_argument("--address")
    p.add_argument("--notes")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="e.g. never-suspend (repeatable)")
    p = command(commands, "list", cmd_customer_list, "list customers", json_flag=True)
    p.add_argument("--tag", metavar="TAG", help="only customers with this tag")
    p.add_argument("--search", metavar="TEXT", help="match name, email or phone")
    p = command(commands, "show", cmd_customer_show, "show one customer with their balance", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")
    p = command(commands, "balance", cmd_customer_balance, "what a customer owes (negative: credit)", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")


def cmd_customer_add(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        customer = customers.add_customer(
            session,
            actor(),
            name=args.name,
            email=args.email,
            phone=args.phone,
            address=args.address,
            notes=args.notes,
            tags=args.tag,
        )
    report(args, customer.to_json(), f"customer {customer.name!r} added (id {customer.id})")
    return 0


def cmd_customer_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = customers.list_customers(session, tag=args.tag, search=args.search)
    return print_listing(
        args,
        found,
        ("ID", "NAME", "EMAIL", "PHONE", "TAGS"),
        lambda c: (c.id, c.name, c.email, c.phone, ",".join(c.tags)),
    )


def cmd_customer_show(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    with transaction(args) as session:
        customer = customers.get_customer(session, args.id)
        owed = ledger.balance(session, customer.id, settings.billing.currency)
        their_services = services.list_services(session, customer_id=customer.id)
    view = customer.to_json()
    view["balance"] = owed.to_json()
    view["currency"] = owed.currency.code
    view["services"] = [s.id for s in their_services]
    show(args, view)
    return 0


def cmd_customer_balance(args: argparse.Namespace) -> int:
    """``edgebill customer balance ID [--json]``: positive means the customer owes."""
    with transaction(args) as session:
        customers.load(session, args.id)
        standing = settle(session, args.id, args.settings.billing.currency)
    view = {
        "customer_id": args.id,
        "currency": standing.balance.currency.code,
        "balance": standing.balance.to_json(),
        "unpaid": standing.unpaid.to_json(),
        "credit": standing.credit.to_json(),
        "open_invoices": [item.number for item in standing.items if item.unpaid.is_positive()],
    }
    if args.json:
        print_json(view)
    elif standing.balance.is_negative():
        print(f"customer {args.id} has a credit of {-standing.balance}")
    else:
        print(f"customer {args.id} owes {standing.balance}")
    return 0
