"""Payments and refunds; each writes its ledger movement in the same transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config import Settings
from daemon.db.models import LedgerKind, Payment, PaymentMethod, utcnow
from daemon.services import _validate as check
from daemon.services import audit, customers, ledger
from daemon.services._db import insert_unique
from daemon.services.errors import Conflict, Invalid, NotFound
from policies.money import AmountOutOfRange, Currency, Money, check_amount, currency

__all__ = [
    "PaymentDetails",
    "PaymentRecord",
    "by_external_id",
    "external_ids_starting",
    "get_payment",
    "list_payments",
    "record_payment",
    "refund_payment",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class PaymentRecord:
    id: int
    customer_id: int
    amount: Money
    method: str
    reference: str | None
    received_at: datetime
    external_id: str | None
    refund_of_id: int | None
    created_at: datetime

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "amount": self.amount.to_json(),
            "currency": self.amount.currency.code,
            "method": self.method,
            "reference": self.reference,
            "received_at": self.received_at.isoformat(),
            "external_id": self.external_id,
            "refund_of_id": self.refund_of_id,
            "created_at": self.created_at.isoformat(),
        }


def record_of(row: Payment) -> PaymentRecord:
    return PaymentRecord(
        id=row.id,
        customer_id=row.customer_id,
        amount=Money(row.amount_minor, currency(row.currency)),
        method=row.method.value,
        reference=row.reference,
        received_at=row.received_at,
        external_id=row.external_id,
        refund_of_id=row.refund_of_id,
        created_at=row.created_at,
    )


def _method(value: str | PaymentMethod) -> PaymentMethod:
    try:
        return PaymentMethod(value)
    except ValueError:
        choices = ", ".join(m.value for m in PaymentMethod)
        raise Invalid(f"invalid payment method {value!r}: expected one of {choices}") from None


def positive_amount(value: Money | str, cur: Currency, noun: str, *, elsewhere: str) -> Money:
    """``value`` (``Money`` or a decimal string) as money in ``cur`` above zero, else :class:`Invalid`.

    ``noun`` names what is being entered (``payment``, ``refund``, ``credit note``); ``elsewhere`` ends the
    message for an amount in another currency (``"this installation bills in USD"``).
    """
    try:
        if isinstance(value, str):
            value = Money.parse(value, cur)
        check_amount(value, f"{noun} amount")
    except ValueError as exc:
        raise Invalid(str(exc) if isinstance(exc, AmountOutOfRange) else f"{noun} amount: {exc}") from None
    if value.currency != cur:
        raise Invalid(f"{noun} is in {value.currency.code} but {elsewhere}")
    if not value.is_positive():
        raise Invalid(f"{noun} amount must be above zero, got {value.to_json()}")
    return value


class PaymentDetails(TypedDict, total=False):
    """The keyword arguments of :func:`record_payment`, and of every caller that takes a payment in
    (:func:`daemon.billing.payments.receive_payment`)."""

    customer_id: Required[int]
    #: ``Money``, or a decimal string such as ``"30.00"``.
    amount: Required[Money | str]
    #: ``cash`` when not given.
    method: str | PaymentMethod
    reference: str | None
    #: Now when not given; timezone-aware.
    received_at: datetime | None
    #: A payment processor's or a bank statement's id for the payment; makes recording it idempotent.
    external_id: str | None


def by_external_id(session: Session, external_id: str) -> PaymentRecord | None:
    """The payment recorded with this external id, if any."""
    row = session.scalars(select(Payment).where(Payment.external_id == external_id)).one_or_none()
    return None if row is None else record_of(row)


def external_ids_starting(session: Session, prefix: str) -> list[str]:
    """The external ids of recorded payments that begin with ``prefix`` (taken literally)."""
    query = select(Payment.external_id).where(Payment.external_id.startswith(prefix, autoescape=True))
    return [ext for ext in session.scalars(query) if ext is not None]


def record_payment(
    session: Session, actor: str, settings: Settings, **details: Unpack[PaymentDetails]
) -> PaymentRecord:
    """Record money received from a customer and credit their ledger (:class:`PaymentDetails` names the
    keyword arguments).

    ``amount`` must be above zero and in the billing currency (``settings.billing.currency``). With
    ``external_id`` the call is idempotent: the same id with the same customer and amount returns the payment
    already recorded, and writes nothing; the same id with different details is a :class:`Conflict`.
    """
    customer_id = details["customer_id"]
    accepted = settings.billing.currency
    amount = positive_amount(
        details["amount"], accepted, "payment", elsewhere=f"this installation bills in {accepted.code}"
    )
    paid_by = _method(details.get("method", PaymentMethod.CASH))
    ref = check.text(details.get("reference"), "reference", max_len=200)
    ext = check.text(details.get("external_id"), "external id", max_len=200)
    when = details.get("received_at") or utcnow()
    if when.tzinfo is None:
        raise Invalid("received_at must be timezone-aware")
    customers.load(session, customer_id)
    if ext is not None:
        existing = by_external_id(session, ext)
        if existing is not None:
            paid = existing.amount
            if (existing.customer_id, paid.minor, paid.currency.code) == (
                customer_id,
                amount.minor,
                amount.currency.code,
            ):
                return existing
            raise Conflict(f"external id {ext!r} was already used for payment {existing.id} with other details")
    row = Payment(
        customer_id=customer_id,
        amount_minor=amount.minor,
        currency=amount.currency.code,
        method=paid_by,
        reference=ref,
        received_at=when,
        external_id=ext,
    )
    insert_unique(session, row, f"external id {ext!r} was just used for another payment")
    ledger.post(session, customer_id, -amount, LedgerKind.PAYMENT, payment_id=row.id, memo=ref)
    result = record_of(row)
    audit.record(session, actor, "payment.add", "payment", None, result.to_json())
    log.info("payment %s of %s recorded for customer %s by %s", row.id, amount, customer_id, actor)
    return result


def refund_payment(
    session: Session,
    actor: str,
    payment_id: int,
    *,
    amount: Money | str | None = None,
    reference: str | None = None,
) -> PaymentRecord:
    """Give back all or part of a payment: a negative payment row naming it, and a ledger debit.

    The refunds of a payment never add up to more than the payment.
    """
    original = session.get(Payment, payment_id)
    if original is None:
        raise NotFound(f"payment {payment_id} not found")
    if original.refund_of_id is not None:
        raise Invalid(f"payment {payment_id} is itself a refund")
    cur = currency(original.currency)
    refunded = -int(
        session.scalar(
            select(func.coalesce(func.sum(Payment.amount_minor), 0)).where(Payment.refund_of_id == payment_id)
        )
        or 0
    )
    left = Money(original.amount_minor - refunded, cur)
    give = positive_amount(
        left if amount is None else amount, cur, "refund", elsewhere=f"payment {payment_id} was in {cur.code}"
    )
    if give > left:
        raise Invalid(f"refund of {give} exceeds the {left} left to refund on payment {payment_id}")
    row = Payment(
        customer_id=original.customer_id,
        amount_minor=-give.minor,
        currency=cur.code,
        method=original.method,
        reference=check.text(reference, "reference", max_len=200),
        received_at=utcnow(),
        refund_of_id=original.id,
    )
    session.add(row)
    session.flush()
    ledger.post(session, original.customer_id, give, LedgerKind.REFUND, payment_id=row.id, memo=row.reference)
    result = record_of(row)
    audit.record(session, actor, "payment.refund", "payment", None, result.to_json())
    log.info("refund %s of %s on payment %s by %s", row.id, give, payment_id, actor)
    return result


def get_payment(session: Session, payment_id: int) -> PaymentRecord:
    row = session.get(Payment, payment_id)
    if row is None:
        raise NotFound(f"payment {payment_id} not found")
    return record_of(row)


def list_payments(
    session: Session, *, customer_id: int | None = None, by_date: bool = False, limit: int = 1000
) -> list[PaymentRecord]:
    """Payments and refunds, newest first (by ``id``, or by the time received with ``by_date``)."""
    query = select(Payment).order_by(Payment.received_at.desc() if by_date else Payment.id.desc())
    query = query.limit(max(1, limit))
    if customer_id is not None:
        query = query.where(Payment.customer_id == customer_id)
    return [record_of(row) for row in session.scalars(query)]
