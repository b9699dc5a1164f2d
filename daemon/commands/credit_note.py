"""``edgebill credit-note add``: credit an invoice with a new document linked to it."""

from __future__ import annotations

import argparse

from daemon.billing.account import on_payment
from daemon.billing.common import today
from daemon.billing.documents import issue_credit_note
from daemon.commands.common import SubParsers, actor, command, group, positive_int, report, transaction
from daemon.config import Settings
from daemon.services import invoices


def register(sub: SubParsers) -> None:
    commands = group(sub, "credit-note", "credit notes")
    p = command(commands, "add", cmd_credit_note_add, "credit an invoice (a new document linked to it)", json_flag=True)
    p.add_argument("invoice_id", type=positive_int, metavar="INVOICE_ID")
    p.add_argument("--amount", required=True, metavar="AMOUNT", help="tax included, e.g. 10.00")
    p.add_argument("--reason", required=True, metavar="TEXT")


def cmd_credit_note_add(args: argparse.Namespace) -> int:
    """``edgebill credit-note add INVOICE_ID --amount X --reason TEXT``."""
    settings: Settings = args.settings
    with transaction(args) as session:
        row = issue_credit_note(
            session,
            actor(),
            settings.billing,
            args.invoice_id,
            args.amount,
            args.reason,
            issued_on=today(settings.billing),
        )
        on_payment(session, settings, row.customer_id, actor=actor())
        view = invoices.record_of(row).to_json()
    report(
        args,
        view,
        f"credit note {view['number']} of {view['total']} {view['currency']} issued on invoice {args.invoice_id}",
    )
    return 0
