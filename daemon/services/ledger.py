"""The customer ledger: insert-only movements whose sum is what the customer owes.

Positive amounts raise the balance (an invoice), negative ones lower it (a payment, a credit note). Rows are
never changed; a correction is a new row (the database refuses ``UPDATE`` and ``DELETE`` on ``ledger``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.db.models import LedgerEntry, LedgerKind
from policies.money import Currency, Money, currency

__all__ = ["LedgerRecord", "balance", "entries", "in_credit", "post"]

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class LedgerRecord:
    id: int
    customer_id: int
    amount: Money
    kind: str
    invoice_id: int | None
    payment_id: int | None
    memo: str | None
    created_at: datetime

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "amount": self.amount.to_json(),
            "currency": self.amount.currency.code,
            "kind": self.kind,
            "invoice_id": self.invoice_id,
            "payment_id": self.payment_id,
            "memo": self.memo,
            "created_at": self.created_at.isoformat(),
        }


def _record_of(row: LedgerEntry) -> LedgerRecord:
    return LedgerRecord(
        id=row.id,
        customer_id=row.customer_id,
        amount=Money(row.amount_minor, currency(row.currency)),
        kind=row.kind.value,
        invoice_id=row.invoice_id,
        payment_id=row.payment_id,
        memo=row.memo,
        created_at=row.created_at,
    )


def post(
    session: Session,
    customer_id: int,
    amount: Money,
    kind: LedgerKind,
    *,
    invoice_id: int | None = None,
    payment_id: int | None = None,
    memo: str | None = None,
) -> LedgerRecord:
    """Append a movement in the caller's transaction (``amount`` > 0: the customer owes more)."""
    if not isinstance(amount, Money):
        raise TypeError(f"ledger amounts are Money, got {type(amount).__name__}")
    row = LedgerEntry(
        customer_id=customer_id,
        currency=amount.currency.code,
        amount_minor=amount.minor,
        kind=kind,
        invoice_id=invoice_id,
        payment_id=payment_id,
        memo=memo,
    )
    session.add(row)
    session.flush()
    return _record_of(row)


def balance(session: Session, customer_id: int, cur: Currency | str) -> Money:
    """What the customer owes in ``cur`` (negative: credit in their favour)."""
    resolved = cur if isinstance(cur, Currency) else currency(cur)
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.customer_id == customer_id, LedgerEntry.currency == resolved.code
        )
    )
    return Money(int(total or 0), resolved)


def in_credit(session: Session, customer_ids: Sequence[int], cur: Currency) -> set[int]:
    """Which of these customers have money on account in ``cur`` (a balance below zero)."""
    query = (
        select(LedgerEntry.customer_id)
        .where(LedgerEntry.customer_id.in_(customer_ids), LedgerEntry.currency == cur.code)
        .group_by(LedgerEntry.customer_id)
        .having(func.sum(LedgerEntry.amount_minor) < 0)
    )
    return set(session.scalars(query))


def entries(session: Session, customer_id: int) -> list[LedgerRecord]:
    """The customer's movements, oldest first."""
    query = select(LedgerEntry).where(LedgerEntry.customer_id == customer_id).order_by(LedgerEntry.id)
    return [_record_of(row) for row in session.scalars(query)]
