"""Command-line commands for billing, payments and dunning.

:func:`register` adds the top-level ``billing``, ``dunning`` and ``credit-note`` groups to the ``edgebill``
parser's sub-commands. Commands that belong to groups the main parser already has (``payment``,
``customer``, ``invoice``, ``service``) are added by one ``configure_*`` function each, given that group's
sub-parsers; :func:`attach` calls all of them. Every handler takes the parsed ``args`` (with the loaded
settings in ``args.settings``), runs in one database transaction, prints a summary or ``--json``, and returns
its exit code: 0, or 1 when part of the work failed (the failures are printed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from daemon import cli
from daemon.billing.account import on_payment, run_dunning
from daemon.billing.common import today
from daemon.billing.documents import issue_credit_note, settle, void_invoice
from daemon.billing.payments import StatementError, import_statement, refund
from daemon.billing.pdf import render_invoice_pdf
from daemon.billing.run import run_billing
from daemon.cli import _date, _positive_int, _print_json
from daemon.config import Settings
from daemon.db.models import Service
from daemon.services import audit, customers, invoices
from daemon.services.errors import Invalid, NotFound
from daemon.services.services import record_of
from policies.money import total

__all__ = [
    "attach",
    "cmd_billing_run",
    "cmd_credit_note_add",
    "cmd_customer_balance",
    "cmd_dunning_run",
    "cmd_invoice_pdf",
    "cmd_invoice_void",
    "cmd_payment_import",
    "cmd_payment_refund",
    "cmd_service_promise",
    "configure_customer_balance",
    "configure_invoice_pdf",
    "configure_invoice_void",
    "configure_payment_import",
    "configure_payment_refund",
    "configure_service_promise",
    "register",
]

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
Handler = Callable[[argparse.Namespace], int]


# -- plumbing -------------------------------------------------------------------------------------------------


def _command(
    sub: SubParsers, name: str, handler: Handler, help_text: str, *, json_flag: bool = True
) -> argparse.ArgumentParser:
    return cli._command(sub, name, handler, help_text, json_flag=json_flag)


def _as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of", type=_date, metavar="YYYY-MM-DD", help="act as on this day (default: today, billing time zone)"
    )


# -- billing and dunning runs ---------------------------------------------------------------------------------


def cmd_billing_run(args: argparse.Namespace) -> int:
    """``edgebill billing run [--as-of DAY] [--json]``."""
    result = run_billing(cli.checked_engine(args), args.settings, as_of=args.as_of, actor=cli.actor())
    if args.json:
        _print_json(result.to_json())
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


def cmd_dunning_run(args: argparse.Namespace) -> int:
    """``edgebill dunning run [--as-of DAY] [--json]``."""
    result = run_dunning(cli.checked_engine(args), args.settings, as_of=args.as_of, actor=cli.actor())
    if args.json:
        _print_json(result.to_json())
    else:
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


# -- payments ---------------------------------------------------------------------------------------------------


def cmd_payment_import(args: argparse.Namespace) -> int:
    """``edgebill payment import FILE.csv [--json]``: all rows, or none when a row is broken."""
    try:
        with cli.transaction(args) as session:
            report = import_statement(session, cli.actor(), args.settings, Path(args.file))
    except StatementError as exc:
        if args.json:
            _print_json({"error": str(exc), "problems": list(exc.problems)})
        else:
            for problem in exc.problems:
                print(f"{args.file}: {problem}", file=sys.stderr)
        raise
    if args.json:
        _print_json(report.to_json())
        return 0
    for row in report.rows:
        who = f"customer {row.customer_id}" if row.customer_id is not None else "-"
        print(f"line {row.line}: {row.outcome:<16} {row.amount:>12}  {who:<14} {row.reference}  {row.detail}")
    print(
        f"{report.count('recorded')} recorded, {report.count('already-imported')} already imported, "
        f"{report.count('unmatched')} unmatched"
    )
    return 0


def cmd_payment_refund(args: argparse.Namespace) -> int:
    """``edgebill payment refund ID [--amount X]``."""
    with cli.transaction(args) as session:
        done = refund(session, cli.actor(), args.settings, args.id, amount=args.amount, reference=args.reference)
    if args.json:
        _print_json(done.payment.to_json())  # the refund row, shaped as `payment add` prints a payment
    else:
        print(f"refund {done.payment.id} of {-done.payment.amount} on payment {args.id} recorded")
    return 0


def cmd_customer_balance(args: argparse.Namespace) -> int:
    """``edgebill customer balance ID [--json]``: positive means the customer owes."""
    with cli.transaction(args) as session:
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
        _print_json(view)
    elif standing.balance.is_negative():
        print(f"customer {args.id} has a credit of {-standing.balance}")
    else:
        print(f"customer {args.id} owes {standing.balance}")
    return 0


# -- invoices and credit notes ----------------------------------------------------------------------------------


def cmd_invoice_pdf(args: argparse.Namespace) -> int:
    """``edgebill invoice pdf ID -o FILE``."""
    with cli.transaction(args) as session:
        pdf = render_invoice_pdf(session, args.settings, args.id)
    target = Path(args.output)
    try:
        target.write_bytes(pdf)
    except OSError as exc:
        raise Invalid(f"cannot write {target}: {exc.strerror or exc}") from None
    print(f"invoice {args.id} written to {target} ({len(pdf)} bytes)")
    return 0


def cmd_invoice_void(args: argparse.Namespace) -> int:
    """``edgebill invoice void ID``."""
    with cli.transaction(args) as session:
        row = void_invoice(session, cli.actor(), args.id)
        on_payment(session, args.settings, row.customer_id, actor=cli.actor())
        view = invoices.record_of(row).to_json()
    if args.json:
        _print_json(view)
    else:
        print(f"invoice {view['number']} voided")
    return 0


def cmd_credit_note_add(args: argparse.Namespace) -> int:
    """``edgebill credit-note add INVOICE_ID --amount X --reason TEXT``."""
    settings: Settings = args.settings
    with cli.transaction(args) as session:
        row = issue_credit_note(
            session,
            cli.actor(),
            settings.billing,
            args.invoice_id,
            args.amount,
            args.reason,
            issued_on=today(settings.billing),
        )
        on_payment(session, settings, row.customer_id, actor=cli.actor())
        view = invoices.record_of(row).to_json()
    if args.json:
        _print_json(view)
    else:
        print(f"credit note {view['number']} of {view['total']} {view['currency']} issued on invoice {args.invoice_id}")
    return 0


# -- services ---------------------------------------------------------------------------------------------------


def cmd_service_promise(args: argparse.Namespace) -> int:
    """``edgebill service promise ID --until DAY``: hold dunning enforcement on the service until that day."""
    settings: Settings = args.settings
    day = today(settings.billing)
    if args.until < day:
        raise Invalid(f"a promise to pay must run until today ({day}) or later, got {args.until}")
    with cli.transaction(args) as session:
        row = session.get(Service, args.id)
        if row is None:
            raise NotFound(f"service {args.id} not found")
        before = record_of(row).to_json()
        row.promise_until = args.until
        session.flush()
        audit.record(session, cli.actor(), "service.promise", "service", before, record_of(row).to_json())
        outcome = on_payment(session, settings, row.customer_id, actor=cli.actor())
    if args.json:
        _print_json({"service_id": args.id, "promise_until": args.until.isoformat(), **outcome.to_json()})
    else:
        print(f"service {args.id}: promise to pay until {args.until}")
        for change in outcome.changes:
            print(f"service {change.service_id}: {change.before} -> {change.after}")
    return 0


# -- registration -----------------------------------------------------------------------------------------------


def configure_payment_import(group: SubParsers) -> argparse.ArgumentParser:
    p = _command(group, "import", cmd_payment_import, "import a bank statement CSV (date, amount, reference, [name])")
    p.add_argument("file", metavar="FILE.csv")
    return p


def configure_payment_refund(group: SubParsers) -> argparse.ArgumentParser:
    p = _command(group, "refund", cmd_payment_refund, "refund all or part of a payment")
    p.add_argument("id", type=_positive_int, metavar="ID")
    p.add_argument("--amount", metavar="AMOUNT", help="default: all that is left to refund")
    p.add_argument("--reference", metavar="REF", help="refund reference")
    return p


def configure_customer_balance(group: SubParsers) -> argparse.ArgumentParser:
    p = _command(group, "balance", cmd_customer_balance, "what a customer owes (negative: credit)")
    p.add_argument("id", type=_positive_int, metavar="ID")
    return p


def configure_invoice_pdf(group: SubParsers) -> argparse.ArgumentParser:
    p = _command(group, "pdf", cmd_invoice_pdf, "write an invoice or credit note as PDF", json_flag=False)
    p.add_argument("id", type=_positive_int, metavar="ID")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    return p


def configure_invoice_void(group: SubParsers) -> argparse.ArgumentParser:
    p = _command(group, "void", cmd_invoice_void, "void an open invoice")
    p.add_argument("id", type=_positive_int, metavar="ID")
    return p


def configure_service_promise(group: SubParsers) -> argparse.ArgumentParser:
    p = _command(group, "promise", cmd_service_promise, "record a promise to pay: no enforcement until then")
    p.add_argument("id", type=_positive_int, metavar="ID")
    p.add_argument("--until", required=True, type=_date, metavar="YYYY-MM-DD")
    return p


def register(sub: SubParsers) -> None:
    """Add ``billing run``, ``dunning run`` and ``credit-note add`` to the ``edgebill`` sub-commands."""
    group = sub.add_parser("billing", help="invoicing", description="invoicing").add_subparsers(
        dest="billing_command", required=True, metavar="COMMAND"
    )
    _as_of(_command(group, "run", cmd_billing_run, "invoice everything due (idempotent)"))
    group = sub.add_parser("dunning", help="overdue accounts", description="overdue accounts").add_subparsers(
        dest="dunning_command", required=True, metavar="COMMAND"
    )
    _as_of(_command(group, "run", cmd_dunning_run, "apply the dunning ladder to every customer, send reminders"))
    group = sub.add_parser("credit-note", help="credit notes", description="credit notes").add_subparsers(
        dest="credit_note_command", required=True, metavar="COMMAND"
    )
    p = _command(group, "add", cmd_credit_note_add, "credit an invoice (a new document linked to it)")
    p.add_argument("invoice_id", type=_positive_int, metavar="INVOICE_ID")
    p.add_argument("--amount", required=True, metavar="AMOUNT", help="tax included, e.g. 10.00")
    p.add_argument("--reason", required=True, metavar="TEXT")


def attach(groups: Mapping[str, SubParsers]) -> None:
    """Add this package's commands to the existing ``payment``, ``customer``, ``invoice`` and ``service`` groups
    (the sub-parsers of each, by group name); groups not given are skipped."""
    wiring: dict[str, tuple[Callable[[SubParsers], argparse.ArgumentParser], ...]] = {
        "payment": (configure_payment_import, configure_payment_refund),
        "customer": (configure_customer_balance,),
        "invoice": (configure_invoice_pdf, configure_invoice_void),
        "service": (configure_service_promise,),
    }
    for name, configure in wiring.items():
        if name in groups:
            for add in configure:
                add(groups[name])
