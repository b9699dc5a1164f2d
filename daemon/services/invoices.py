"""Invoices and credit notes: the read side, and gapless numbering for the code that issues them.

Numbers are gapless per series: :func:`next_invoice_number` increments the series counter in the issuing
transaction, so a rolled-back invoice gives its number back and concurrent issuers queue on the row lock.
Writing documents is :mod:`daemon.services.documents`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from daemon.db.models import Invoice, InvoiceKind, InvoiceLine, InvoiceLineKind, InvoiceSequence, InvoiceStatus
from daemon.services.errors import Invalid, NotFound
from policies.money import Currency, Money, currency

__all__ = [
    "InvoiceLineRecord",
    "InvoiceRecord",
    "billed_customer",
    "billed_lines",
    "credited",
    "credits_by_invoice",
    "format_number",
    "get_invoice",
    "list_invoices",
    "load_invoice",
    "next_invoice_number",
    "payable_invoices",
    "with_open_invoices",
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


def load_invoice(session: Session, invoice_id: int) -> Invoice:
    """The invoice or credit note row, or :class:`NotFound`."""
    row = session.get(Invoice, invoice_id)
    if row is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return row


def get_invoice(session: Session, invoice_id: int) -> InvoiceRecord:
    return record_of(load_invoice(session, invoice_id))


def credited(session: Session, invoice_id: int) -> int:
    """The sum of the totals of the invoice's credit notes, in minor units (zero or below)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor), 0)).where(
            Invoice.corrects_invoice_id == invoice_id, Invoice.kind == InvoiceKind.CREDIT_NOTE
        )
    )
    return int(total or 0)


def credits_by_invoice(session: Session, customer_id: int) -> dict[int, int]:
    """For each of the customer's invoices with credit notes, the sum of their totals in minor units."""
    query = (
        select(Invoice.corrects_invoice_id, func.sum(Invoice.total_minor))
        .where(Invoice.customer_id == customer_id, Invoice.kind == InvoiceKind.CREDIT_NOTE)
        .group_by(Invoice.corrects_invoice_id)
    )
    return {int(invoice_id): int(total) for invoice_id, total in session.execute(query) if invoice_id is not None}


def payable_invoices(session: Session, customer_id: int, cur: Currency) -> list[Invoice]:
    """The rows of the customer's invoices in ``cur`` that are not void (credit notes left out), oldest first
    (by issue date, then id): the order money pays them in."""
    query = (
        select(Invoice)
        .where(
            Invoice.customer_id == customer_id,
            Invoice.kind == InvoiceKind.INVOICE,
            Invoice.status != InvoiceStatus.VOID,
            Invoice.currency == cur.code,
        )
        .order_by(Invoice.issued_on, Invoice.id)
    )
    return list(session.scalars(query))


def with_open_invoices(session: Session, customer_ids: Sequence[int]) -> set[int]:
    """Which of these customers have an open invoice."""
    query = select(Invoice.customer_id).where(
        Invoice.customer_id.in_(customer_ids), Invoice.status == InvoiceStatus.OPEN
    )
    return set(session.scalars(query))


def billed_customer(session: Session, series: str, number: int) -> int | None:
    """The customer invoice ``number`` of ``series`` (an invoice, not a credit note) was issued to, if any."""
    query = select(Invoice.customer_id).where(
        Invoice.series == series, Invoice.number == number, Invoice.kind == InvoiceKind.INVOICE
    )
    return session.scalars(query).first()


def billed_lines(
    session: Session, service_ids: Sequence[int]
) -> Iterator[tuple[int, InvoiceLineKind, date | None, date | None]]:
    """The service, kind, first and last day of every line billing one of ``service_ids`` on an invoice or credit
    note that is not void (one query per 5,000 services)."""
    for start in range(0, len(service_ids), 5000):
        chunk = service_ids[start : start + 5000]
        query = (
            select(InvoiceLine.service_id, InvoiceLine.kind, InvoiceLine.period_start, InvoiceLine.period_end)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(InvoiceLine.service_id.in_(chunk), Invoice.status != InvoiceStatus.VOID)
        )
        for service_id, kind, period_start, period_end in session.execute(query):
            if service_id is not None:
                yield service_id, kind, period_start, period_end


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


def next_invoice_number(session: Session, series: str, count: int = 1) -> int:
    """Take the next number of ``series`` (1 for a new series) in the caller's transaction; with ``count``, that
    many consecutive numbers, returning the first."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(InvoiceSequence).values(series=series, last_number=0).on_conflict_do_nothing(index_elements=["series"])
    )
    last = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.series == series)
        .values(last_number=InvoiceSequence.last_number + count)
        .returning(InvoiceSequence.last_number)
    ).scalar_one()
    return int(last) - count + 1
