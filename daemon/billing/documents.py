"""Invoices, credit notes and voids, their ledger rows, and the allocation of money to open invoices.

This module decides what each document says; :mod:`daemon.services.documents` stores it.

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

from sqlalchemy.orm import Session

from daemon.billing.common import LINE_KIND
from daemon.config import BillingSettings
from daemon.db.models import Invoice, InvoiceKind, InvoiceLineKind, InvoiceStatus
from daemon.services import audit, customers, documents, invoices, ledger, payments
from daemon.services.documents import LineRow
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
    series = billing.invoice_series
    stored = documents.add_invoices(
        session,
        series=series,
        cur=billing.currency,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=billing.due_days),
        batch=work,
    )
    log.info(
        "%s invoices issued (%s to %s)",
        len(stored),
        invoices.format_number(series, stored[0].number),
        invoices.format_number(series, stored[-1].number),
    )
    return [
        Issued(s.customer_id, s.invoice_id, invoices.format_number(series, s.number), s.total, s.lines) for s in stored
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
    row = documents.add_document(
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
    original = invoices.load_invoice(session, invoice_id)
    if original.kind is not InvoiceKind.INVOICE:
        raise NotFound(f"invoice {invoice_id} not found")
    cur = currency(original.currency)
    amount = payments.positive_amount(amount, cur, "credit note", elsewhere=f"invoice {invoice_id} is in {cur.code}")
    text = reason.strip()
    if not text or len(text) > 400 or any(ord(ch) < 32 for ch in text):
        raise Invalid("credit note reason must be 1-400 characters on one line")
    customers.lock(session, original.customer_id)
    if original.status is InvoiceStatus.VOID:
        raise Conflict(f"invoice {invoice_id} is void; nothing to credit")
    left = Money(original.total_minor + invoices.credited(session, invoice_id), cur)
    if amount > left:
        raise Invalid(f"credit of {amount} exceeds the {left} left on invoice {invoice_id}")
    tax = Money.zero(cur)
    if original.total_minor != 0 and original.tax_minor != 0:
        # The invoice's tax share of the credited amount, computed exactly and rounded once.
        exact = _CONTEXT.divide(_CONTEXT.multiply(amount.amount, original.tax_minor), original.total_minor)
        tax = round_money(exact, cur)
    number = invoices.format_number(original.series, original.number)
    net = amount - tax
    row = documents.add_document(
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
    row = invoices.load_invoice(session, invoice_id)
    if row.kind is not InvoiceKind.INVOICE:
        raise NotFound(f"invoice {invoice_id} not found")
    customers.lock(session, row.customer_id)
    number = invoices.format_number(row.series, row.number)
    if row.status is not InvoiceStatus.OPEN:
        raise Conflict(
            f"invoice {number} is {row.status.value}; only open invoices can be voided (issue a credit note)"
        )
    if invoices.credited(session, invoice_id):
        raise Conflict(f"invoice {number} has credit notes; it cannot be voided")
    before = invoices.record_of(row).to_json()
    documents.void(session, row, f"void {number}")
    settle(session, row.customer_id, currency(row.currency))
    audit.record(session, actor, "invoice.void", "invoice", before, invoices.record_of(row).to_json())
    log.info("invoice %s voided by %s", number, actor)
    return row


def settle(session: Session, customer_id: int, cur: Currency) -> Standing:
    """Allocate the customer's money to their invoices, oldest first, and mark each ``paid`` or ``open``.

    See the module rules. Returns the resulting :class:`Standing`.
    """
    rows = invoices.payable_invoices(session, customer_id, cur)
    credits = invoices.credits_by_invoice(session, customer_id)
    balance = ledger.balance(session, customer_id, cur)
    return _allocate(session, customer_id, rows, credits, balance)


def _allocate(
    session: Session, customer_id: int, rows: Sequence[Invoice], credits: dict[int, int], balance: Money
) -> Standing:
    cur = balance.currency
    effective = [row.total_minor + credits.get(row.id, 0) for row in rows]
    pool = sum(effective) - balance.minor
    items: list[OpenItem] = []
    statuses: list[tuple[Invoice, InvoiceStatus]] = []
    unpaid_total = 0
    for row, owed in zip(rows, effective, strict=True):
        due = max(owed, 0)
        take = min(due, max(pool, 0))
        pool -= take
        unpaid = due - take
        unpaid_total += unpaid
        statuses.append((row, InvoiceStatus.PAID if unpaid == 0 else InvoiceStatus.OPEN))
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
    documents.set_statuses(session, statuses)
    return Standing(
        customer_id=customer_id,
        balance=balance,
        unpaid=Money(unpaid_total, cur),
        credit=Money(max(pool, 0), cur),
        items=tuple(items),
    )
