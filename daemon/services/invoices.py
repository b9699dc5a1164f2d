"""Invoices and credit notes: the read side, and gapless numbering for the code that issues them.

Numbers are gapless per series: :func:`next_invoice_number` increments the series counter in the issuing
transaction, so a rolled-back invoice gives its number back and concurrent issuers queue on the row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from daemon.db.models import Invoice, InvoiceKind, InvoiceLine, InvoiceSequence, InvoiceStatus
from daemon.services.errors import Invalid, NotFound
from policies.money import Money, currency

__all__ = [
    "InvoiceLineRecord",
    "InvoiceRecord",
    "billed_customer",
    "format_number",
    "get_invoice",
    "list_invoices",
    "next_invoice_number",
]

JsonDict = dict[str, Any]


def format_number(series: str, number: int) -> str:
    """The printed invoice number: ``INV-000042``."""
    return f"{series}-{number:06d}"


@dataclass(frozen=True)
class InvoiceLineRecord:
    id: int
    service_id: int | None
    kind: str
    description: str
    period_start: date | None
    period_end: date | None
    amount: Money
    tax: Money

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "service_id": self.service_id,
            "kind": self.kind,
            "description": self.description,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "amount": self.amount.to_json(),
            "tax": self.tax.to_json(),
        }


@dataclass(frozen=True)
class InvoiceRecord:
    id: int
    series: str
    number: int
    kind: str
    customer_id: int
    status: str
    issued_on: date
    due_on: date
    subtotal: Money
    tax: Money
    total: Money
    corrects_invoice_id: int | None
    created_at: datetime
    lines: tuple[InvoiceLineRecord, ...]

    @property
    def display_number(self) -> str:
        return format_number(self.series, self.number)

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "number": self.display_number,
            "series": self.series,
            "sequence": self.number,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "currency": self.total.currency.code,
            "status": self.status,
            "issued_on": self.issued_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "subtotal": self.subtotal.to_json(),
            "tax": self.tax.to_json(),
            "total": self.total.to_json(),
            "corrects_invoice_id": self.corrects_invoice_id,
            "created_at": self.created_at.isoformat(),
            "lines": [line.to_json() for line in self.lines],
        }


def record_of(row: Invoice) -> InvoiceRecord:
    cur = currency(row.currency)

    def line(item: InvoiceLine) -> InvoiceLineRecord:
        return InvoiceLineRecord(
            id=item.id,
            service_id=item.service_id,
            kind=item.kind.value,
            description=item.description,
            period_start=item.period_start,
            period_end=item.period_end,
            amount=Money(item.amount_minor, cur),
            tax=Money(item.tax_minor, cur),
        )

    return InvoiceRecord(
        id=row.id,
        series=row.series,
        number=row.number,
        kind=row.kind.value,
        customer_id=row.customer_id,
        status=row.status.value,
        issued_on=row.issued_on,
        due_on=row.due_on,
        subtotal=Money(row.subtotal_minor, cur),
        tax=Money(row.tax_minor, cur),
        total=Money(row.total_minor, cur),
        corrects_invoice_id=row.corrects_invoice_id,
        created_at=row.created_at,
        lines=tuple(line(item) for item in row.lines),
    )


def get_invoice(session: Session, invoice_id: int) -> InvoiceRecord:
    row = session.get(Invoice, invoice_id)
    if row is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return record_of(row)


def billed_customer(session: Session, series: str, number: int) -> int | None:
    """The customer invoice ``number`` of ``series`` (an invoice, not a credit note) was issued to, if any."""
    query = select(Invoice.customer_id).where(
        Invoice.series == series, Invoice.number == number, Invoice.kind == InvoiceKind.INVOICE
    )
    return session.scalars(query).first()


def list_invoices(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    by_date: bool = False,
    limit: int = 1000,
) -> list[InvoiceRecord]:
    """Invoices and credit notes, newest first (by ``id``, or by issue date with ``by_date``), optionally for
    one customer, status or kind."""
    order = (Invoice.issued_on.desc(), Invoice.id.desc()) if by_date else (Invoice.id.desc(),)
    query = select(Invoice).order_by(*order).limit(max(1, limit))
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    if status is not None:
        try:
            query = query.where(Invoice.status == InvoiceStatus(status))
        except ValueError:
            raise Invalid(f"invalid invoice status {status!r}: expected open, paid or void") from None
    if kind is not None:
        try:
            query = query.where(Invoice.kind == InvoiceKind(kind))
        except ValueError:
            raise Invalid(f"invalid invoice kind {kind!r}: expected invoice or credit_note") from None
    return [record_of(row) for row in session.scalars(query)]


def next_invoice_number(session: Session, series: str) -> int:
    """Take the next number of ``series`` (1 for a new series) in the caller's transaction."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(InvoiceSequence).values(series=series, last_number=0).on_conflict_do_nothing(index_elements=["series"])
    )
    number = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.series == series)
        .values(last_number=InvoiceSequence.last_number + 1)
        .returning(InvoiceSequence.last_number)
    ).scalar_one()
    return int(number)
