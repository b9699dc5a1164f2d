"""Money in and out: manual payments and refunds, each followed by allocation and dunning
(:func:`daemon.billing.account.on_payment`) in the same transaction. Bank statements are read by
:mod:`daemon.billing.statement`, which takes each payment in through :func:`receive_payment`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Unpack

from sqlalchemy.orm import Session

from daemon.billing.account import on_payment
from daemon.billing.dunning import CustomerDunning
from daemon.config import Settings
from daemon.db.models import PaymentMethod
from daemon.services import idempotency, payments
from daemon.services.payments import PaymentDetails, PaymentRecord
from policies.money import Money

__all__ = ["Received", "receive_payment", "refund"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    """A payment taken in: the record, whether this call created it (``False``: a replay of one already
    recorded), and the customer's dunning outcome afterwards."""

    payment: PaymentRecord
    created: bool
    dunning: CustomerDunning | None

    def to_json(self) -> dict[str, Any]:
        return {
            "payment": self.payment.to_json(),
            "created": self.created,
            "dunning": None if self.dunning is None else self.dunning.to_json(),
        }


def _payment_print(details: PaymentDetails, settings: Settings) -> str:
    amount = details["amount"]
    if isinstance(amount, str):
        with contextlib.suppress(ValueError):  # a malformed amount is refused later, with its message
            amount = Money.parse(amount, settings.billing.currency)
    method = details.get("method", PaymentMethod.CASH)
    return idempotency.fingerprint(
        {
            "customer_id": details["customer_id"],
            "amount": str(amount),
            "method": str(method),
            "reference": (details.get("reference") or "").strip(),
        }
    )


def _replayed(session: Session, found: idempotency.Replay) -> Received:
    return Received(payments.get_payment(session, int(found.result["payment_id"])), False, None)


def receive_payment(
    session: Session,
    actor: str,
    settings: Settings,
    *,
    as_of: date | None = None,
    idempotency_key: str | None = None,
    **details: Unpack[PaymentDetails],
) -> Received:
    """Take a payment in: record it (:func:`daemon.services.payments.record_payment`, whose keyword arguments
    :class:`~daemon.services.payments.PaymentDetails` names), then allocate it and re-evaluate the customer's
    services (:func:`~daemon.billing.account.on_payment`), in the caller's transaction. The CLI, the dashboard,
    the payment webhook and the statement import all take money in through this function.

    With ``external_id`` a repeat of a payment already recorded changes nothing and returns ``created=False``;
    so does a repeat of an ``idempotency_key`` (a form's one-time token, a client's request key: see
    :mod:`daemon.services.idempotency`), which returns the payment the first request recorded.
    """
    taken = None
    if idempotency_key is not None:
        found = idempotency.claim(session, actor, "payment.add", idempotency_key, _payment_print(details, settings))
        if isinstance(found, idempotency.Replay):
            return _replayed(session, found)
        taken = found
    external_id = details.get("external_id")
    replay = external_id is not None and payments.by_external_id(session, external_id) is not None
    record = payments.record_payment(session, actor, settings, **details)
    if taken is not None:
        idempotency.complete(session, taken, {"payment_id": record.id})
    if replay:
        return Received(record, False, None)
    outcome = on_payment(session, settings, record.customer_id, actor=actor, as_of=as_of)
    return Received(record, True, outcome)


def refund(
    session: Session,
    actor: str,
    settings: Settings,
    payment_id: int,
    *,
    amount: Money | str | None = None,
    reference: str | None = None,
    as_of: date | None = None,
    idempotency_key: str | None = None,
) -> Received:
    """Refund all or part of a payment, then re-allocate (a refund can reopen a paid invoice). A repeat of an
    ``idempotency_key`` returns the refund the first request recorded and writes nothing."""
    taken = None
    if idempotency_key is not None:
        details = {"payment_id": payment_id, "amount": str(amount), "reference": (reference or "").strip()}
        found = idempotency.claim(session, actor, "payment.refund", idempotency_key, idempotency.fingerprint(details))
        if isinstance(found, idempotency.Replay):
            return _replayed(session, found)
        taken = found
    record = payments.refund_payment(session, actor, payment_id, amount=amount, reference=reference)
    if taken is not None:
        idempotency.complete(session, taken, {"payment_id": record.id})
    outcome = on_payment(session, settings, record.customer_id, actor=actor, as_of=as_of)
    return Received(record, True, outcome)
