"""Invoices, credit notes and voids, their ledger rows, and the allocation of money to open invoices.

The rules, exactly:

* A document is issued inside the caller's transaction: its number is taken from the series counter in that
  transaction (:func:`daemon.services.invoices.next_invoice_number`), so a rolled-back document gives its
  number back and numbers stay gapless. Invoices use ``[billing] invoice_series``; credit notes their own
  series, the invoice series followed by ``-CN``.
* Every line is taxed once, by its own rate and treatment (:func:`policies.tax.tax_line`); the line stores
  its net amount and its tax, the document the sums. A document never mixes currencies.
* Every document posts one ledger row of its total in the same transaction: an invoice raises the balance,
  a credit note (negative totals) lowers it, and a void posts the opposite of the voided invoice as a new
  ``adjustment`` row. Ledger rows are never changed.
* Allocation (:func:`settle`): the money received (payments less refunds) is everything the ledger shows
  beyond the documents. It pays the customer's invoices oldest first (by issue date, then number), after
  each invoice's own credit notes are taken off it. An invoice covered in full is ``paid``; one that is not
  (again, after a refund) is ``open``. What is left over is credit, used by the next invoice.
* A credit note corrects one invoice that is not void, for at most what is left of it after earlier credit
  notes. It is issued applied (status ``paid``). Only an open invoice without credit notes can be voided.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from daemon.billing.common import LINE_KIND
from daemon.config import BillingSettings
from daemon.db.models import (
    Customer,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceSequence,
    InvoiceStatus,
    LedgerEntry,
    LedgerKind,
    utcnow,
)
from daemon.services import audit, customers, invoices, ledger, payments
from daemon.services.errors import Conflict, Invalid, NotFound
from policies.money import Currency, Money, currency, round_money
from policies.proration import ChargeLine
from policies.tax import tax_line

__all__ = [
    "DraftLine",
    "Issued",
    "OpenItem",
    "Standing",
    "credit_note_series",
    "issue_credit_note",
    "issue_invoice",
    "issue_invoices",
    "lock_customer",
    "settle",
    "void_invoice",
]

log = logging.getLogger(__name__)

_CONTEXT = decimal.Context(prec=50)


@dataclass(frozen=True)
class DraftLine:
    """A priced line waiting for an invoice, and the service it bills (``None`` for account-level lines)."""

    service_id: int | None
    charge: ChargeLine


@dataclass(frozen=True)
class OpenItem:
    """An invoice as allocation sees it: its total after credit notes, what pays it, and what is still due."""

    invoice_id: int
    number: str
    issued_on: date
    due_on: date
    total: Money
    credited: Money
    paid: Money
    unpaid: Money


@dataclass(frozen=True)
class Standing:
    """A customer's account after allocation.

    ``balance`` is the ledger sum (positive: owes); ``unpaid`` the sum still due on invoices; ``credit`` the
    money received beyond every invoice; ``items`` the invoices that are not void, oldest first.
    """

    customer_id: int
    balance: Money
    unpaid: Money
    credit: Money
    items: tuple[OpenItem, ...]

    def oldest_unpaid(self, on: date | None = None) -> OpenItem | None:
        """The oldest invoice with something still due (only those due on or before ``on``, when given)."""
        for item in self.items:
            if item.unpaid.is_positive() and (on is None or item.due_on <= on):
                return item
        return None

    def overdue(self, on: date) -> Money:
        """What is still due on invoices whose due date is ``on`` or earlier."""
        owed = Money.zero(self.balance.currency)
        for item in self.items:
            if item.due_on <= on:
                owed = owed + item.unpaid
        return owed


def credit_note_series(billing: BillingSettings) -> str:
    """The series credit notes are numbered in: the invoice series followed by ``-CN``."""
    return f"{billing.invoice_series}-CN"


def lock_customer(session: Session, customer_id: int) -> Customer:
    """The customer row, locked for this transaction on PostgreSQL (SQLite transactions already hold the
    write lock), so two writers never allocate or bill one account at once. :class:`NotFound` if absent."""
    row = session.scalars(select(Customer).where(Customer.id == customer_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    return row


def _add_document(
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
    row.lines = [
        InvoiceLine(
            service_id=service_id,
            kind=line_kind,
            description=description[:500],
            period_start=start,
            period_end=end,
            amount_minor=amount.minor,
            tax_minor=tax_amount.minor,
        )
        for service_id, line_kind, description, start, end, amount, tax_amount in lines
    ]
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


LineRow = tuple[int | None, InvoiceLineKind, str, date | None, date | None, Money, Money]


def _taxed_rows(lines: Sequence[DraftLine], cur: Currency) -> list[LineRow]:
    rows: list[LineRow] = []
    for draft in lines:
        charge = draft.charge
        if charge.amount.currency != cur:
            raise Invalid(
                f"charge {charge.description!r} is in {charge.amount.currency.code}, "
                f"this installation bills in {cur.code}"
            )
        taxed = tax_line(charge)
        rows.append(
            (
                draft.service_id,
                LINE_KIND[charge.kind],
                charge.description,
                charge.period.start,
                charge.period.last_day,
                taxed.net,
                taxed.tax,
            )
        )
    return rows


def _take_numbers(session: Session, series: str, count: int) -> int:
    """Take ``count`` consecutive numbers of ``series`` in the caller's transaction; returns the first."""
    dialect = session.get_bind().dialect.name
    insert_into = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert_into(InvoiceSequence)
        .values(series=series, last_number=0)
        .on_conflict_do_nothing(index_elements=["series"])
    )
    last = session.execute(
        update(InvoiceSequence)
        .where(InvoiceSequence.series == series)
        .values(last_number=InvoiceSequence.last_number + count)
        .returning(InvoiceSequence.last_number)
    ).scalar_one()
    return int(last) - count + 1


@dataclass(frozen=True)
class Issued:
    """An invoice issued by :func:`issue_invoices`."""

    customer_id: int
    invoice_id: int
    number: str
    total: Money
    lines: int


def issue_invoices(
    session: Session, billing: BillingSettings, batch: Sequence[tuple[int, Sequence[DraftLine]]], issued_on: date
) -> list[Issued]:
    """Issue one invoice per ``(customer_id, lines)`` at once (the billing run's bulk path), with the same
    numbering, taxes and ledger rows as :func:`issue_invoice`. The caller holds the customers' locks and
    allocates afterwards where a customer has money to allocate."""
    work = [(customer_id, _taxed_rows(lines, billing.currency)) for customer_id, lines in batch if lines]
    if not work:
        return []
    cur = billing.currency
    series = billing.invoice_series
    first = _take_numbers(session, series, len(work))
    now = utcnow()
    due = issued_on + timedelta(days=billing.due_days)
    headers = []
    for offset, (customer_id, rows) in enumerate(work):
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
                "due_on": due,
                "subtotal_minor": subtotal,
                "tax_minor": tax,
                "total_minor": subtotal + tax,
                "corrects_invoice_id": None,
                "created_at": now,
            }
        )
    ids = list(session.scalars(insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True), headers))
    line_rows = [
        {
            "invoice_id": invoice_id,
            "service_id": service_id,
            "kind": kind,
            "description": description[:500],
            "period_start": start,
            "period_end": end,
            "amount_minor": net.minor,
            "tax_minor": tax.minor,
        }
        for invoice_id, (_, rows) in zip(ids, work, strict=True)
        for service_id, kind, description, start, end, net, tax in rows
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
    log.info(
        "%s invoices issued (%s to %s)",
        len(ids),
        invoices.format_number(series, first),
        invoices.format_number(series, first + len(ids) - 1),
    )
    return [
        Issued(
            customer_id,
            invoice_id,
            invoices.format_number(series, first + offset),
            Money(int(str(header["total_minor"])), cur),
            len(rows),
        )
        for offset, (invoice_id, header, (customer_id, rows)) in enumerate(zip(ids, headers, work, strict=True))
    ]


def issue_invoice(
    session: Session,
    billing: BillingSettings,
    customer_id: int,
    lines: Sequence[DraftLine],
    issued_on: date,
) -> Invoice:
    """Issue one invoice of ``lines`` to the customer, dated ``issued_on`` and due ``due_days`` later."""
    if not lines:
        raise Invalid("an invoice needs at least one line")
    cur = billing.currency
    rows = _taxed_rows(lines, cur)
    row = _add_document(
        session,
        kind=InvoiceKind.INVOICE,
        series=billing.invoice_series,
        customer_id=customer_id,
        cur=cur,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=billing.due_days),
        lines=rows,
    )
    log.info(
        "invoice %s of %s issued to customer %s",
        invoices.format_number(row.series, row.number),
        Money(row.total_minor, cur),
        customer_id,
    )
    return row


def _credited(session: Session, invoice_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Invoice.total_minor), 0)).where(
            Invoice.corrects_invoice_id == invoice_id, Invoice.kind == InvoiceKind.CREDIT_NOTE
        )
    )
    return int(total or 0)


def issue_credit_note(
    session: Session,
    actor: str,
    billing: BillingSettings,
    invoice_id: int,
    amount: Money | str,
    reason: str,
    *,
    issued_on: date,
) -> Invoice:
    """Issue a credit note of ``amount`` (tax included, above zero) against an invoice and apply it.

    The tax part is the invoice's own share of tax in its total, rounded once.
    """
    original = session.get(Invoice, invoice_id)
    if original is None or original.kind is not InvoiceKind.INVOICE:
        raise NotFound(f"invoice {invoice_id} not found")
    cur = currency(original.currency)
    amount = payments.positive_amount(amount, cur, "credit note", elsewhere=f"invoice {invoice_id} is in {cur.code}")
    text = reason.strip()
    if not text or len(text) > 400 or any(ord(ch) < 32 for ch in text):
        raise Invalid("credit note reason must be 1-400 characters on one line")
    lock_customer(session, original.customer_id)
    if original.status is InvoiceStatus.VOID:
        raise Conflict(f"invoice {invoice_id} is void; nothing to credit")
    left = Money(original.total_minor + _credited(session, invoice_id), cur)
    if amount > left:
        raise Invalid(f"credit of {amount} exceeds the {left} left on invoice {invoice_id}")
    tax = Money.zero(cur)
    if original.total_minor != 0 and original.tax_minor != 0:
        # The invoice's tax share of the credited amount, computed exactly and rounded once.
        exact = _CONTEXT.divide(_CONTEXT.multiply(amount.amount, original.tax_minor), original.total_minor)
        tax = round_money(exact, cur)
    number = invoices.format_number(original.series, original.number)
    net = amount - tax
    row = _add_document(
        session,
        kind=InvoiceKind.CREDIT_NOTE,
        series=credit_note_series(billing),
        customer_id=original.customer_id,
        cur=cur,
        issued_on=issued_on,
        due_on=issued_on,
        lines=[(None, InvoiceLineKind.CREDIT, f"Credit on invoice {number}: {text}", None, None, -net, -tax)],
        corrects=original.id,
        status=InvoiceStatus.PAID,
    )
    settle(session, original.customer_id, cur)
    view = invoices.record_of(row).to_json()
    audit.record(session, actor, "invoice.credit_note", "invoice", None, view)
    log.info("credit note %s of %s on invoice %s by %s", view["number"], amount, number, actor)
    return row


def void_invoice(session: Session, actor: str, invoice_id: int) -> Invoice:
    """Void an open invoice that has no credit notes: status ``void`` and an opposite ledger row."""
    row = session.get(Invoice, invoice_id)
    if row is None or row.kind is not InvoiceKind.INVOICE:
        raise NotFound(f"invoice {invoice_id} not found")
    lock_customer(session, row.customer_id)
    number = invoices.format_number(row.series, row.number)
    if row.status is not InvoiceStatus.OPEN:
        raise Conflict(
            f"invoice {number} is {row.status.value}; only open invoices can be voided (issue a credit note)"
        )
    if _credited(session, invoice_id):
        raise Conflict(f"invoice {number} has credit notes; it cannot be voided")
    before = invoices.record_of(row).to_json()
    cur = currency(row.currency)
    row.status = InvoiceStatus.VOID
    session.flush()
    ledger.post(
        session,
        row.customer_id,
        -Money(row.total_minor, cur),
        LedgerKind.ADJUSTMENT,
        invoice_id=row.id,
        memo=f"void {number}",
    )
    settle(session, row.customer_id, cur)
    audit.record(session, actor, "invoice.void", "invoice", before, invoices.record_of(row).to_json())
    log.info("invoice %s voided by %s", number, actor)
    return row


def settle(session: Session, customer_id: int, cur: Currency) -> Standing:
    """Allocate the customer's money to their invoices, oldest first, and mark each ``paid`` or ``open``.

    See the module rules. Returns the resulting :class:`Standing`.
    """
    rows = list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.customer_id == customer_id,
                Invoice.kind == InvoiceKind.INVOICE,
                Invoice.status != InvoiceStatus.VOID,
                Invoice.currency == cur.code,
            )
            .order_by(Invoice.issued_on, Invoice.id)
        )
    )
    credits: dict[int, int] = {
        int(invoice_id): int(total)
        for invoice_id, total in session.execute(
            select(Invoice.corrects_invoice_id, func.sum(Invoice.total_minor))
            .where(Invoice.customer_id == customer_id, Invoice.kind == InvoiceKind.CREDIT_NOTE)
            .group_by(Invoice.corrects_invoice_id)
        )
        if invoice_id is not None
    }
    balance = ledger.balance(session, customer_id, cur)
    return _allocate(session, customer_id, rows, credits, balance)


def _allocate(
    session: Session, customer_id: int, rows: Sequence[Invoice], credits: dict[int, int], balance: Money
) -> Standing:
    cur = balance.currency
    effective = [row.total_minor + credits.get(row.id, 0) for row in rows]
    pool = sum(effective) - balance.minor
    items: list[OpenItem] = []
    unpaid_total = 0
    for row, owed in zip(rows, effective, strict=True):
        due = max(owed, 0)
        take = min(due, max(pool, 0))
        pool -= take
        unpaid = due - take
        unpaid_total += unpaid
        status = InvoiceStatus.PAID if unpaid == 0 else InvoiceStatus.OPEN
        if row.status is not status:
            row.status = status
        items.append(
            OpenItem(
                invoice_id=row.id,
                number=invoices.format_number(row.series, row.number),
                issued_on=row.issued_on,
                due_on=row.due_on,
                total=Money(row.total_minor, cur),
                credited=Money(-credits.get(row.id, 0), cur),
                paid=Money(take, cur),
                unpaid=Money(unpaid, cur),
            )
        )
    session.flush()
    return Standing(
        customer_id=customer_id,
        balance=balance,
        unpaid=Money(unpaid_total, cur),
        credit=Money(max(pool, 0), cur),
        items=tuple(items),
    )


def customer_exists(session: Session, customer_id: int) -> None:
    """Raise :class:`NotFound` unless the customer exists."""
    customers.load(session, customer_id)
