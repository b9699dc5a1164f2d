"""Writing invoices and credit notes: each document with its lines and its ledger row in the caller's transaction,
and the status changes that allocation and voids make.

What a document says (its lines, taxes, totals, due date) is decided by :mod:`daemon.billing.documents`; this
module numbers it (:func:`daemon.services.invoices.next_invoice_number`, gapless per series) and stores it.
The ledger row of a document is its total: an invoice raises the balance, a credit note (negative totals) lowers
it, and a void posts the opposite of the invoice as a new ``adjustment`` row (ledger rows are never changed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert
from sqlalchemy.orm import Session

from daemon.db.models import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceStatus,
    LedgerEntry,
    LedgerKind,
    utcnow,
)
from daemon.services import invoices, ledger
from policies.money import Currency, Money, currency

__all__ = ["LineRow", "Stored", "add_document", "add_invoices", "set_statuses", "void"]

#: One line as stored: the service it bills (``None`` for account-level lines), its kind, description, first and
#: last day (``None`` for lines without a period), net amount and tax.
LineRow = tuple[int | None, InvoiceLineKind, str, date | None, date | None, Money, Money]


def _line_values(rows: Sequence[LineRow]) -> list[dict[str, object]]:
    return [
        {
            "service_id": service_id,
            "kind": kind,
            "description": description[:500],
            "period_start": start,
            "period_end": end,
            "amount_minor": net.minor,
            "tax_minor": tax.minor,
        }
        for service_id, kind, description, start, end, net, tax in rows
    ]


def add_document(
    session: Session,
    *,
    kind: InvoiceKind,
    series: str,
    customer_id: int,
    cur: Currency,
    issued_on: date,
    due_on: date,
    lines: Sequence[LineRow],
    corrects: int | None = None,
    status: InvoiceStatus = InvoiceStatus.OPEN,
) -> Invoice:
    """Store one invoice or credit note of ``lines``, numbered in ``series``, with its ledger row."""
    subtotal = sum((amount.minor for *_, amount, _tax in lines), 0)
    tax = sum((tax_amount.minor for *_, tax_amount in lines), 0)
    number = invoices.next_invoice_number(session, series)
    row = Invoice(
        series=series,
        number=number,
        kind=kind,
        customer_id=customer_id,
        currency=cur.code,
        status=status,
        issued_on=issued_on,
        due_on=due_on,
        subtotal_minor=subtotal,
        tax_minor=tax,
        total_minor=subtotal + tax,
        corrects_invoice_id=corrects,
    )
    row.lines = [InvoiceLine(**values) for values in _line_values(lines)]
    session.add(row)
    session.flush()
    ledger_kind = LedgerKind.INVOICE if kind is InvoiceKind.INVOICE else LedgerKind.CREDIT_NOTE
    ledger.post(
        session,
        customer_id,
        Money(row.total_minor, cur),
        ledger_kind,
        invoice_id=row.id,
        memo=invoices.format_number(series, number),
    )
    return row


@dataclass(frozen=True)
class Stored:
    """An invoice stored by :func:`add_invoices`."""

    customer_id: int
    invoice_id: int
    number: int
    total: Money
    lines: int


def add_invoices(
    session: Session,
    *,
    series: str,
    cur: Currency,
    issued_on: date,
    due_on: date,
    batch: Sequence[tuple[int, Sequence[LineRow]]],
) -> list[Stored]:
    """Store one invoice per ``(customer_id, lines)`` of ``batch`` at once, with consecutive numbers of ``series``
    and their ledger rows: the same rows as :func:`add_document`, in three statements."""
    if not batch:
        return []
    first = invoices.next_invoice_number(session, series, len(batch))
    now = utcnow()
    headers = []
    for offset, (customer_id, rows) in enumerate(batch):
        subtotal = sum(row[5].minor for row in rows)
        tax = sum(row[6].minor for row in rows)
        headers.append(
            {
                "series": series,
                "number": first + offset,
                "kind": InvoiceKind.INVOICE,
                "customer_id": customer_id,
                "currency": cur.code,
                "status": InvoiceStatus.OPEN,
                "issued_on": issued_on,
                "due_on": due_on,
                "subtotal_minor": subtotal,
                "tax_minor": tax,
                "total_minor": subtotal + tax,
                "corrects_invoice_id": None,
                "created_at": now,
            }
        )
    ids = list(session.scalars(insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True), headers))
    line_rows = [
        {"invoice_id": invoice_id, **values}
        for invoice_id, (_, rows) in zip(ids, batch, strict=True)
        for values in _line_values(rows)
    ]
    session.execute(insert(InvoiceLine), line_rows)
    session.execute(
        insert(LedgerEntry),
        [
            {
                "customer_id": header["customer_id"],
                "currency": cur.code,
                "amount_minor": header["total_minor"],
                "kind": LedgerKind.INVOICE,
                "invoice_id": invoice_id,
                "payment_id": None,
                "memo": invoices.format_number(series, int(str(header["number"]))),
                "created_at": now,
            }
            for invoice_id, header in zip(ids, headers, strict=True)
        ],
    )
    return [
        Stored(customer_id, invoice_id, first + offset, Money(int(str(header["total_minor"])), cur), len(rows))
        for offset, (invoice_id, header, (customer_id, rows)) in enumerate(zip(ids, headers, batch, strict=True))
    ]


def void(session: Session, row: Invoice, memo: str) -> None:
    """Mark the invoice ``void`` and post the opposite of its total as an ``adjustment`` ledger row."""
    row.status = InvoiceStatus.VOID
    session.flush()
    ledger.post(
        session,
        row.customer_id,
        -Money(row.total_minor, currency(row.currency)),
        LedgerKind.ADJUSTMENT,
        invoice_id=row.id,
        memo=memo,
    )


def set_statuses(session: Session, statuses: Iterable[tuple[Invoice, InvoiceStatus]]) -> None:
    """Give each invoice its status (``paid`` or ``open``, as allocation found), writing only the changes."""
    for row, status in statuses:
        if row.status is not status:
            row.status = status
    session.flush()
