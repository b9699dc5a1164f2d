"""``edgebill invoice list|show|pdf|void``: invoices and credit notes."""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.billing.account import on_payment
from daemon.billing.documents import void_invoice
from daemon.billing.pdf import render_invoice_pdf
from daemon.commands.common import (
    SubParsers,
    actor,
    command,
    group,
    positive_int,
    print_fields,
    print_json,
    print_listing,
    print_table,
    report,
    transaction,
)
from daemon.config.secrets import write_private
from daemon.services import invoices
from daemon.services.errors import Invalid


def register(sub: SubParsers) -> None:
    commands = group(sub, "invoice", "invoices and credit notes")
    p = command(commands, "list", cmd_invoice_list, "list invoices, newest first", json_flag=True)
    p.add_argument("--customer", type=positive_int, metavar="ID")
    p.add_argument("--status", choices=("open", "paid", "void"))
    p = command(commands, "show", cmd_invoice_show, "show one invoice with its lines", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")
    p = command(commands, "pdf", cmd_invoice_pdf, "write an invoice or credit note as PDF")
    p.add_argument("id", type=positive_int, metavar="ID")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p = command(commands, "void", cmd_invoice_void, "void an open invoice", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")


def cmd_invoice_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = invoices.list_invoices(session, customer_id=args.customer, status=args.status)
    return print_listing(
        args,
        found,
        ("ID", "NUMBER", "KIND", "CUSTOMER", "ISSUED", "DUE", "TOTAL", "STATUS"),
        lambda i: (i.id, i.display_number, i.kind, i.customer_id, i.issued_on, i.due_on, str(i.total), i.status),
    )


def cmd_invoice_show(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        invoice = invoices.get_invoice(session, args.id)
    if args.json:
        print_json(invoice.to_json())
        return 0
    view = invoice.to_json()
    lines = view.pop("lines")
    print_fields(view)
    print()
    print_table(
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


def cmd_invoice_pdf(args: argparse.Namespace) -> int:
    """``edgebill invoice pdf ID -o FILE``."""
    with transaction(args) as session:
        pdf = render_invoice_pdf(session, args.settings, args.id)
    target = Path(args.output)
    try:
        write_private(target, pdf)  # it names a customer: readable by its owner only
    except OSError as exc:
        raise Invalid(f"cannot write {target}: {exc.strerror or exc}") from None
    print(f"invoice {args.id} written to {target} ({len(pdf)} bytes)")
    return 0


def cmd_invoice_void(args: argparse.Namespace) -> int:
    """``edgebill invoice void ID``."""
    with transaction(args) as session:
        row = void_invoice(session, actor(), args.id)
        on_payment(session, args.settings, row.customer_id, actor=actor())
        view = invoices.record_of(row).to_json()
    report(args, view, f"invoice {view['number']} voided")
    return 0
