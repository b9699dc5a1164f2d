"""The ``edgebill`` command line.

``edgebill [--config PATH] COMMAND ...``; the configuration file is ``--config``, else ``$EDGEBILL_CONFIG``, else
:func:`daemon.config.default_config_path`. Every command runs in one database transaction: it either completes
or changes nothing. Failures print one line, ``edgebill: error: REASON``, on stderr and exit with 1 (2 for
usage errors). Listings and ``add`` commands take ``--json``.

Adding a command: write ``cmd_x(args) -> int`` and register it in :func:`build_parser` with
``set_defaults(handler=cmd_x, needs_settings=True|False)``; with ``needs_settings`` the loaded
:class:`~daemon.config.Settings` are in ``args.settings``, and :func:`transaction` opens the database.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from daemon import process_cli
from daemon.config import ConfigError, Settings, default_config_path, load_settings
from daemon.db import current_revision, head_revision, make_engine, session_factory, upgrade
from daemon.security import SecretError, create_key_file
from daemon.services import ServiceError, customers, invoices, ledger, payments, plans, routers, services, users

__all__ = ["CliError", "build_parser", "main", "transaction"]

log = logging.getLogger(__name__)

PROG = "edgebill"

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A command that cannot run; the message is printed as ``edgebill: error: MESSAGE``."""


# -- plumbing -------------------------------------------------------------------------------------------------


def actor() -> str:
    """Who is acting, for the audit log: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _engine(args: argparse.Namespace) -> Engine:
    engine: Engine | None = getattr(args, "_engine", None)
    if engine is None:
        settings: Settings = args.settings
        engine = make_engine(settings.database.url)
        args._engine = engine
    return engine


def _check_schema(engine: Engine) -> None:
    at = current_revision(engine)
    head = head_revision()
    if at is None:
        raise CliError("the database has no edgebill schema yet; run: edgebill init")
    if at != head:
        raise CliError(f"the database schema is at revision {at}, this edgebill needs {head}; run: edgebill init")


def checked_engine(args: argparse.Namespace) -> Engine:
    """The configured database, refused unless its schema is the one this edgebill needs."""
    engine = _engine(args)
    _check_schema(engine)
    return engine


@contextlib.contextmanager
def transaction(args: argparse.Namespace) -> Iterator[Session]:
    """One transaction on the configured database: committed when the block succeeds, else rolled back."""
    with session_factory(checked_engine(args)).begin() as session:
        yield session


def read_secret_file(path: str, what: str) -> str:
    """A secret from a file (``-`` for standard input), without its trailing newline."""
    try:
        data = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{what} file {path} does not exist") from None
    except UnicodeDecodeError:
        raise CliError(f"{what} file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise CliError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if not data:
        raise CliError(f"{what} file {path} is empty")
    return data


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _print_fields(record: dict[str, Any]) -> None:
    width = max(len(key) for key in record)
    for key, value in record.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        print(f"{key.ljust(width)}  {'' if value is None else value}")


def _show(args: argparse.Namespace, view: dict[str, Any]) -> None:
    """One record: JSON with ``--json``, else one ``key  value`` line per field."""
    if args.json:
        _print_json(view)
    else:
        _print_fields(view)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: expected YYYY-MM-DD") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"invalid id {text!r}: expected a positive integer")
    return int(text)


# -- init, config, keygen -------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    password = read_secret_file(args.admin_password_file, "admin password") if args.admin_password_file else None
    if password is not None:
        users.check_new_credentials(args.admin_user, password)
    engine = _engine(args)
    before = current_revision(engine)
    revision = upgrade(engine)
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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CliError(f"{path} already exists; refusing to overwrite it") from None
        except OSError as exc:
            raise CliError(f"cannot create {path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    else:
        try:
            create_key_file(path)
        except OSError as exc:
            raise CliError(f"cannot create {path}: {exc.strerror or exc}") from None
    print(f"{path}: new {'web session' if args.web else 'data encryption'} key written (mode 0600)")
    return 0


# -- routers --------------------------------------------------------------------------------------------------


def cmd_router_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = routers.list_routers(session, include_retired=args.all)
    if args.json:
        _print_json([r.to_json() for r in found])
        return 0
    _print_table(
        ("NAME", "KIND", "ADDRESS", "SITE", "STATUS", "LAST SEEN", "RETIRED"),
        [
            (
                r.name,
                r.kind,
                f"{r.host}:{r.port}",
                r.site,
                r.status,
                r.last_seen_at.isoformat(timespec="seconds") if r.last_seen_at else "never",
                "yes" if r.retired else "",
            )
            for r in found
        ],
    )
    return 0


def cmd_router_check(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    targets = [settings.router(args.name)] if args.name else list(settings.routers)
    if not targets:
        raise CliError("no routers are configured")
    if args.timeout is not None:
        targets = [dataclasses.replace(t, timeout=timedelta(seconds=args.timeout)) for t in targets]
    results = [routers.check_router(target) for target in targets]
    if args.json:
        _print_json([r.to_json() for r in results])
    else:
        for result in results:
            print(result)
    return 0 if all(r.ok for r in results) else 1


# -- plans ----------------------------------------------------------------------------------------------------


def cmd_plan_add(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        plan = plans.add_plan(
            session,
            actor(),
            args.settings,
            name=args.name,
            download=args.download,
            upload=args.upload,
            price=args.price,
            currency_code=args.currency,
            cycle=args.cycle,
            prepaid=args.prepaid,
            setup_fee=args.setup_fee,
            quota=args.quota,
            over_quota=args.over_quota,
            fair_use_download=args.fair_use_download,
            fair_use_upload=args.fair_use_upload,
            overage_price=args.overage_price,
            tax_rate=args.tax_rate,
            tax_inclusive=args.tax_inclusive,
            burst_download=args.burst_download,
            burst_upload=args.burst_upload,
            burst_threshold_download=args.burst_threshold_download,
            burst_threshold_upload=args.burst_threshold_upload,
            burst_time=args.burst_time,
        )
    if args.json:
        _print_json(plan.to_json())
    else:
        print(f"plan {plan.name!r} added (id {plan.id}): {plan.rate}, {plan.price} {plan.cycle}")
    return 0


def cmd_plan_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = plans.list_plans(session)
    if args.json:
        _print_json([p.to_json() for p in found])
        return 0
    _print_table(
        ("NAME", "DOWN", "UP", "PRICE", "CYCLE", "QUOTA", "ACTIVE"),
        [
            (
                p.name,
                p.to_json()["download"],
                p.to_json()["upload"],
                str(p.price),
                p.cycle + (" prepaid" if p.prepaid else ""),
                p.to_json()["quota"] or "unlimited",
                "yes" if p.active else "no",
            )
            for p in found
        ],
    )
    return 0


def cmd_plan_show(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        plan = plans.get_plan(session, args.name)
    _show(args, plan.to_json())
    return 0


# -- customers ------------------------------------------------------------------------------------------------


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
    if args.json:
        _print_json(customer.to_json())
    else:
        print(f"customer {customer.name!r} added (id {customer.id})")
    return 0


def cmd_customer_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = customers.list_customers(session, tag=args.tag, search=args.search)
    if args.json:
        _print_json([c.to_json() for c in found])
        return 0
    _print_table(
        ("ID", "NAME", "EMAIL", "PHONE", "TAGS"),
        [(c.id, c.name, c.email, c.phone, ",".join(c.tags)) for c in found],
    )
    return 0


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
    _show(args, view)
    return 0


# -- services -------------------------------------------------------------------------------------------------


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
    if args.json:
        _print_json(service.to_json())
    else:
        how = f"PPPoE {service.pppoe_login}" if service.pppoe_login else f"static {service.ipv4}"
        print(f"service {service.id} added: {how} on {service.router}, plan {service.plan}, {service.state}")
    return 0


def cmd_service_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = services.list_services(session, customer_id=args.customer, state=args.state, router=args.router)
    if args.json:
        _print_json([s.to_json() for s in found])
        return 0
    _print_table(
        ("ID", "CUSTOMER", "PLAN", "ROUTER", "LOGIN/ADDRESS", "STATE", "REASON"),
        [
            (
                s.id,
                f"{s.customer_id} {s.customer_name}",
                s.plan,
                s.router,
                s.pppoe_login or s.ipv4,
                s.state,
                s.state_reason,
            )
            for s in found
        ],
    )
    return 0


def cmd_service_show(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        service = services.get_service(session, args.id)
    _show(args, service.to_json())
    return 0


def cmd_service_set_plan(args: argparse.Namespace) -> int:
    """Move a service to another plan from today, invoicing the prorated difference."""
    from daemon.billing.changes import change_plan

    with transaction(args) as session:
        before = services.get_service(session, args.id)
        change = None if before.plan == args.plan else change_plan(session, actor(), args.settings, args.id, args.plan)
        service = services.get_service(session, args.id)
    if args.json:
        _print_json(service.to_json())
    elif change is None:
        print(f"service {service.id} is already on plan {service.plan!r}; nothing changed")
    else:
        invoiced = f"; prorated difference on invoice {change.number}" if change.number else ""
        print(f"service {service.id} moved from plan {before.plan!r} to {service.plan!r}{invoiced}")
    return 0


# -- payments and invoices ------------------------------------------------------------------------------------


def cmd_payment_add(args: argparse.Namespace) -> int:
    """Record a payment, allocate it to the oldest open invoices and release the customer's services at once."""
    from daemon.billing.payments import receive_payment

    with transaction(args) as session:
        received = receive_payment(
            session,
            actor(),
            args.settings,
            customer_id=args.customer,
            amount=args.amount,
            method=args.method,
            reference=args.reference,
        )
    payment = received.payment
    if args.json:
        _print_json(payment.to_json())
    else:
        print(f"payment {payment.id} of {payment.amount} recorded for customer {payment.customer_id}")
    return 0


def cmd_payment_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = payments.list_payments(session, customer_id=args.customer)
    if args.json:
        _print_json([p.to_json() for p in found])
        return 0
    _print_table(
        ("ID", "CUSTOMER", "AMOUNT", "METHOD", "REFERENCE", "RECEIVED"),
        [
            (p.id, p.customer_id, str(p.amount), p.method, p.reference, p.received_at.isoformat(timespec="seconds"))
            for p in found
        ],
    )
    return 0


def cmd_invoice_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = invoices.list_invoices(session, customer_id=args.customer, status=args.status)
    if args.json:
        _print_json([i.to_json() for i in found])
        return 0
    _print_table(
        ("ID", "NUMBER", "KIND", "CUSTOMER", "ISSUED", "DUE", "TOTAL", "STATUS"),
        [(i.id, i.display_number, i.kind, i.customer_id, i.issued_on, i.due_on, str(i.total), i.status) for i in found],
    )
    return 0


def cmd_invoice_show(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        invoice = invoices.get_invoice(session, args.id)
    if args.json:
        _print_json(invoice.to_json())
        return 0
    view = invoice.to_json()
    lines = view.pop("lines")
    _print_fields(view)
    print()
    _print_table(
        ("LINE", "DESCRIPTION", "PERIOD", "AMOUNT", "TAX"),
        [
            (
                line["id"],
                line["description"],
                f"{line['period_start'] or ''}..{line['period_end'] or ''}",
                line["amount"],
                line["tax"],
            )
            for line in lines
        ],
    )
    return 0


# -- users and tokens -----------------------------------------------------------------------------------------


def cmd_user_add(args: argparse.Namespace) -> int:
    password = read_secret_file(args.password_file, "password")
    with transaction(args) as session:
        user = users.create_user(session, actor(), args.name, password, args.role)
    if args.json:
        _print_json(user.to_json())
    else:
        print(f"user {user.username!r} added (id {user.id}, role {user.role})")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = users.list_users(session)
    if args.json:
        _print_json([u.to_json() for u in found])
        return 0
    _print_table(
        ("ID", "USER", "ROLE", "ACTIVE", "LAST LOGIN"),
        [
            (
                u.id,
                u.username,
                u.role,
                "yes" if u.active else "no",
                u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never",
            )
            for u in found
        ],
    )
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        issued = users.create_token(session, actor(), args.user, args.name)
    if args.json:
        _print_json({**issued.record.to_json(), "token": issued.token})
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
    if args.json:
        _print_json([t.to_json() for t in found])
        return 0
    _print_table(
        ("ID", "USER", "NAME", "CREATED", "LAST USED", "REVOKED"),
        [
            (
                t.id,
                t.username,
                t.name,
                t.created_at.isoformat(timespec="seconds"),
                t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never",
                t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
            )
            for t in found
        ],
    )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        token = users.revoke_token(session, actor(), args.id)
    print(f"API token {token.name!r} (id {token.id}) of {token.username} revoked")
    return 0


# -- the parser -----------------------------------------------------------------------------------------------


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
    *,
    needs_settings: bool = True,
    json_flag: bool = False,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler, needs_settings=needs_settings)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def build_parser() -> argparse.ArgumentParser:
    """The ``edgebill`` argument parser; each command sets ``handler`` and ``needs_settings``."""
    from daemon import reconcile_cli  # it builds on the helpers of this module
    from daemon.billing import cli as billing_cli

    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}

    parser = argparse.ArgumentParser(prog=PROG, description="ISP edge billing and provisioning.")
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=os.environ.get("EDGEBILL_CONFIG") or None,
        help="configuration file (default: $EDGEBILL_CONFIG, ./edgebill.toml, /etc/edgebill/edgebill.toml)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "init", cmd_init, "create or upgrade the database schema, sync routers, create the first admin")
    p.add_argument("--admin-user", default="admin", metavar="NAME", help="first admin's user name (default admin)")
    p.add_argument("--admin-password-file", metavar="FILE", help="file holding the first admin's password (- = stdin)")

    group = _group(sub, "config", "configuration file tools")
    p = _command(group, "check", cmd_config_check, "validate a configuration file", needs_settings=False)
    p.add_argument("path", nargs="?", metavar="PATH", help="the file (default: the one edgebill would use)")

    p = _command(sub, "keygen", cmd_keygen, "write a new random key file (mode 0600)", needs_settings=False)
    p.add_argument("path", metavar="PATH", help="file to create; an existing file is never overwritten")
    p.add_argument("--web", action="store_true", help="a web session key instead of a data encryption key")

    group = _group(sub, "router", "configured routers")
    p = _command(group, "list", cmd_router_list, "list routers", json_flag=True)
    p.add_argument("--all", action="store_true", help="include retired routers")
    p = _command(group, "check", cmd_router_check, "check that routers can be reached", json_flag=True)
    p.add_argument("name", nargs="?", metavar="NAME", help="one router (default: all)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="override the router's configured timeout")

    group = _group(sub, "plan", "service plans")
    p = _command(group, "add", cmd_plan_add, "add a plan", json_flag=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--download", required=True, metavar="RATE", help="download rate, e.g. 10M")
    p.add_argument("--upload", required=True, metavar="RATE", help="upload rate, e.g. 5M")
    p.add_argument("--price", required=True, metavar="AMOUNT", help="price per cycle, e.g. 30.00")
    p.add_argument("--currency", metavar="CODE", help="must be the billing currency (the default)")
    p.add_argument("--cycle", choices=("monthly", "weekly"), default="monthly")
    p.add_argument("--prepaid", action="store_true", help="billed at the start of each period")
    p.add_argument("--setup-fee", metavar="AMOUNT", help="one-time fee on the first invoice")
    p.add_argument("--quota", metavar="SIZE", help="data per period, e.g. 100GB (default unlimited)")
    p.add_argument("--over-quota", choices=("throttle", "charge"), default="throttle")
    p.add_argument("--fair-use-download", metavar="RATE", help="download rate once the quota is used up")
    p.add_argument("--fair-use-upload", metavar="RATE", help="upload rate once the quota is used up")
    p.add_argument("--overage-price", metavar="AMOUNT", help="price per started GB beyond the quota")
    p.add_argument("--tax-rate", metavar="FRACTION", help="e.g. 0.16 (default: [billing] tax_rate)")
    taxed = p.add_mutually_exclusive_group()
    taxed.add_argument("--tax-inclusive", dest="tax_inclusive", action="store_true", default=None)
    taxed.add_argument("--tax-exclusive", dest="tax_inclusive", action="store_false")
    p.add_argument("--burst-download", metavar="RATE", help="burst download rate (above --download)")
    p.add_argument("--burst-upload", metavar="RATE", help="burst upload rate (above --upload)")
    p.add_argument("--burst-threshold-download", metavar="RATE", help="default: the download rate")
    p.add_argument("--burst-threshold-upload", metavar="RATE", help="default: the upload rate")
    p.add_argument("--burst-time", metavar="DURATION", help="averaging window, e.g. 8s (default 8s)")
    _command(group, "list", cmd_plan_list, "list plans", json_flag=True)
    p = _command(group, "show", cmd_plan_show, "show one plan", json_flag=True)
    p.add_argument("name", metavar="NAME")

    group = groups["customer"] = _group(sub, "customer", "customers")
    p = _command(group, "add", cmd_customer_add, "add a customer", json_flag=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--email")
    p.add_argument("--phone")
    p.add_argument("--address")
    p.add_argument("--notes")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="e.g. never-suspend (repeatable)")
    p = _command(group, "list", cmd_customer_list, "list customers", json_flag=True)
    p.add_argument("--tag", metavar="TAG", help="only customers with this tag")
    p.add_argument("--search", metavar="TEXT", help="match name, email or phone")
    p = _command(group, "show", cmd_customer_show, "show one customer with their balance", json_flag=True)
    p.add_argument("id", type=_positive_int, metavar="ID")

    group = groups["service"] = _group(sub, "service", "subscriber services")
    p = _command(group, "add", cmd_service_add, "add a service", json_flag=True)
    p.add_argument("--customer", required=True, type=_positive_int, metavar="ID")
    p.add_argument("--plan", required=True, metavar="NAME")
    p.add_argument("--router", required=True, metavar="NAME")
    p.add_argument("--pppoe", metavar="LOGIN", help="PPPoE login (needs --password-file)")
    p.add_argument("--password-file", metavar="FILE", help="file holding the PPPoE password (- = stdin)")
    p.add_argument("--ip", metavar="A.B.C.D", help="static IPv4 address (or the pinned address of a PPPoE login)")
    p.add_argument("--start", type=_date, metavar="YYYY-MM-DD", help="first day of service (default today)")
    p = _command(group, "list", cmd_service_list, "list services", json_flag=True)
    p.add_argument("--customer", type=_positive_int, metavar="ID")
    p.add_argument("--state", choices=("active", "throttled", "suspended", "terminated"))
    p.add_argument("--router", metavar="NAME")
    p = _command(group, "show", cmd_service_show, "show one service", json_flag=True)
    p.add_argument("id", type=_positive_int, metavar="ID")
    p = _command(group, "set-plan", cmd_service_set_plan, "move a service to another plan", json_flag=True)
    p.add_argument("id", type=_positive_int, metavar="ID")
    p.add_argument("--plan", required=True, metavar="NAME")
    reconcile_cli.register_service_commands(group)

    group = groups["payment"] = _group(sub, "payment", "payments")
    p = _command(group, "add", cmd_payment_add, "record a payment", json_flag=True)
    p.add_argument("--customer", required=True, type=_positive_int, metavar="ID")
    p.add_argument("--amount", required=True, metavar="AMOUNT", help="e.g. 30.00, in the billing currency")
    p.add_argument("--method", choices=("cash", "bank", "card", "online"), default="cash")
    p.add_argument("--reference", metavar="REF", help="receipt or transfer reference")
    p = _command(group, "list", cmd_payment_list, "list payments, newest first", json_flag=True)
    p.add_argument("--customer", type=_positive_int, metavar="ID")

    group = groups["invoice"] = _group(sub, "invoice", "invoices and credit notes")
    p = _command(group, "list", cmd_invoice_list, "list invoices, newest first", json_flag=True)
    p.add_argument("--customer", type=_positive_int, metavar="ID")
    p.add_argument("--status", choices=("open", "paid", "void"))
    p = _command(group, "show", cmd_invoice_show, "show one invoice with its lines", json_flag=True)
    p.add_argument("id", type=_positive_int, metavar="ID")

    group = _group(sub, "user", "dashboard and API users")
    p = _command(group, "add", cmd_user_add, "add a user", json_flag=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=("admin", "support", "readonly"))
    p.add_argument("--password-file", required=True, metavar="FILE", help="file holding the password (- = stdin)")
    _command(group, "list", cmd_user_list, "list users", json_flag=True)

    group = _group(sub, "token", "API tokens")
    p = _command(group, "create", cmd_token_create, "create an API token (printed once)", json_flag=True)
    p.add_argument("user", metavar="USER")
    p.add_argument("name", metavar="NAME", help="what the token is for, e.g. billing-export")
    p = _command(group, "list", cmd_token_list, "list API tokens (never their secrets)", json_flag=True)
    p.add_argument("user", nargs="?", metavar="USER")
    p = _command(group, "revoke", cmd_token_revoke, "revoke an API token")
    p.add_argument("id", type=_positive_int, metavar="ID")

    reconcile_cli.register(sub)
    billing_cli.register(sub)  # billing run, dunning run, credit-note add
    billing_cli.attach(groups)  # payment import/refund, customer balance, invoice pdf/void, service promise
    process_cli.register(sub)  # run, web, demo, lab: the long-running commands
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    elif verbosity > 0:
        root.setLevel(level)


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first


def main(argv: list[str] | None = None) -> int:
    """Run one ``edgebill`` command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    _setup_logging(args.verbose)
    handler: Handler = args.handler
    try:
        if getattr(args, "needs_settings", False):
            args.settings = load_settings(args.config or default_config_path())
        return handler(args)
    except (CliError, ServiceError, ConfigError, SecretError) as exc:
        message = str(exc)
    except IntegrityError as exc:
        message = f"the change conflicts with existing data: {_one_line(str(exc.orig))}"
    except OperationalError as exc:
        message = f"database error: {_one_line(str(exc.orig))}"
    finally:
        engine: Engine | None = getattr(args, "_engine", None)
        if engine is not None:
            engine.dispose()
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return 1
