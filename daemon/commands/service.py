"""``edgebill service ...``: subscriber services, the whole group.

``add``, ``list``, ``show``; ``set-plan`` moves a service to another plan from today, invoicing the prorated
difference; ``throttle``, ``suspend``, ``resume`` and ``terminate`` change the service's state in the database and
queue the router work (a running daemon pushes it on its next reconcile, or ``edgebill reconcile`` pushes it now);
``promise`` holds dunning enforcement until a day the customer promised to pay by.
"""

from __future__ import annotations

import argparse

from daemon.billing.account import on_payment
from daemon.billing.changes import change_plan
from daemon.billing.common import today
from daemon.commands.common import (
    CliError,
    SubParsers,
    actor,
    command,
    group,
    parse_date,
    positive_int,
    print_json,
    print_listing,
    read_secret_file,
    report,
    show,
    transaction,
)
from daemon.config import Settings
from daemon.services import ops, services
from daemon.services.errors import Invalid
from daemon.services.state import set_service_state

STATE_COMMANDS = {
    "throttle": "slow a service to the dunning throttle rate",
    "suspend": "cut a service off (secret disabled or blocked, per [enforcement] suspend_mode)",
    "resume": "return a service to its plan",
    "terminate": "end a service: its entries are removed from the router",
}


def register(sub: SubParsers) -> None:
    commands = group(sub, "service", "subscriber services")
    p = command(commands, "add", cmd_service_add, "add a service", json_flag=True)
    p.add_argument("--customer", required=True, type=positive_int, metavar="ID")
    p.add_argument("--plan", required=True, metavar="NAME")
    p.add_argument("--router", required=True, metavar="NAME")
    p.add_argument("--pppoe", metavar="LOGIN", help="PPPoE login (needs --password-file)")
    p.add_argument("--password-file", metavar="FILE", help="file holding the PPPoE password (- = stdin)")
    p.add_argument("--ip", metavar="A.B.C.D", help="static IPv4 address (or the pinned address of a PPPoE login)")
    p.add_argument("--start", type=parse_date, metavar="YYYY-MM-DD", help="first day of service (default today)")
    p = command(commands, "list", cmd_service_list, "list services", json_flag=True)
    p.add_argument("--customer", type=positive_int, metavar="ID")
    p.add_argument("--state", choices=("active", "throttled", "suspended", "terminated"))
    p.add_argument("--router", metavar="NAME")
    p = command(commands, "show", cmd_service_show, "show one service", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")
    p = command(commands, "set-plan", cmd_service_set_plan, "move a service to another plan", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")
    p.add_argument("--plan", required=True, metavar="NAME")
    for verb, help_text in STATE_COMMANDS.items():
        p = command(commands, verb, cmd_service_state, help_text, json_flag=True)
        p.add_argument("id", type=positive_int, metavar="ID")
        p.add_argument("--reason", metavar="TEXT", help="why (shown to support staff)")
        p.set_defaults(state_verb=verb)
    p = command(
        commands, "promise", cmd_service_promise, "record a promise to pay: no enforcement until then", json_flag=True
    )
    p.add_argument("id", type=positive_int, metavar="ID")
    p.add_argument("--until", required=True, type=parse_date, metavar="YYYY-MM-DD")


def cmd_service_add(args: argparse.Namespace) -> int:
    password = read_secret_file(args.password_file, "PPPoE password") if args.password_file else None
    if args.pppoe is not None and password is None:
        raise CliError("--pppoe needs --password-file")
    if args.pppoe is None and password is not None:
        raise CliError("--password-file is only for --pppoe services")
    with transaction(args) as session:
        service = services.add_service(
            session,
            actor(),
            args.settings,
            customer_id=args.customer,
            plan_name=args.plan,
            router_name=args.router,
            started_on=args.start,
            pppoe_login=args.pppoe,
            pppoe_password=password,
            ipv4=args.ip,
        )
    how = f"PPPoE {service.pppoe_login}" if service.pppoe_login else f"static {service.ipv4}"
    report(
        args,
        service.to_json(),
        f"service {service.id} added: {how} on {service.router}, plan {service.plan}, {service.state}",
    )
    return 0


def cmd_service_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = services.list_services(session, customer_id=args.customer, state=args.state, router=args.router)
    return print_listing(
        args,
        found,
        ("ID", "CUSTOMER", "PLAN", "ROUTER", "LOGIN/ADDRESS", "STATE", "REASON"),
        lambda s: (
            s.id,
            f"{s.customer_id} {s.customer_name}",
            s.plan,
            s.router,
            s.pppoe_login or s.ipv4,
            s.state,
            s.state_reason,
        ),
    )


def cmd_service_show(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        service = services.get_service(session, args.id)
        conflict = ops.conflicts_of_service(session, args.id)
    # "not_on_router": why its router does not carry it (a conflict the last reconcile found), else null.
    show(args, {**service.to_json(), "not_on_router": conflict})
    return 0


def cmd_service_set_plan(args: argparse.Namespace) -> int:
    """Move a service to another plan from today, invoicing the prorated difference."""
    with transaction(args) as session:
        before = services.get_service(session, args.id)
        change = None if before.plan == args.plan else change_plan(session, actor(), args.settings, args.id, args.plan)
        service = services.get_service(session, args.id)
    if args.json:
        print_json(service.to_json())
    elif change is None:
        print(f"service {service.id} is already on plan {service.plan!r}; nothing changed")
    else:
        invoiced = f"; prorated difference on invoice {change.number}" if change.number else ""
        print(f"service {service.id} moved from plan {before.plan!r} to {service.plan!r}{invoiced}")
    return 0


def cmd_service_state(args: argparse.Namespace) -> int:
    """``edgebill service throttle|suspend|resume|terminate ID [--reason TEXT]``."""
    with transaction(args) as session:
        change = set_service_state(session, actor(), args.id, args.state_verb, args.reason)
    show(args, change.to_json())
    if not args.json and change.changed:
        print("queued for the router: it follows on the next reconcile (edgebill reconcile pushes it now)")
    return 0


def cmd_service_promise(args: argparse.Namespace) -> int:
    """``edgebill service promise ID --until DAY``: hold dunning enforcement on the service until that day."""
    settings: Settings = args.settings
    day = today(settings.billing)
    if args.until < day:
        raise Invalid(f"a promise to pay must run until today ({day}) or later, got {args.until}")
    with transaction(args) as session:
        service = services.set_promise(session, actor(), args.id, args.until)
        outcome = on_payment(session, settings, service.customer_id, actor=actor())
    if args.json:
        print_json({"service_id": args.id, "promise_until": args.until.isoformat(), **outcome.to_json()})
    else:
        print(f"service {args.id}: promise to pay until {args.until}")
        for change in outcome.changes:
            print(f"service {change.service_id}: {change.before} -> {change.after}")
    return 0
