"""Payment processor events (signed webhooks), turned into payments.

The signature is checked by the web endpoint (:mod:`web.billing`) before an event reaches
:func:`handle_event`. The rules, exactly:

* ``payment_intent.succeeded`` (``amount_received``) and ``checkout.session.completed`` (``amount_total``,
  when ``payment_status`` is ``paid``) record an ``online`` payment. Amounts are in the currency's minor
  units, as the processor sends them; the currency must be the billing currency, and the amount at most
  :data:`policies.money.MAX_AMOUNT` minor units.
* The customer is named by the object's ``metadata.customer_id`` (or, for a checkout session, its
  ``client_reference_id``), as a number or as a customer reference such as ``C123``.
* The payment's external id is the payment intent's id (``stripe:pi_...``), else the event's, so a replayed
  event, or the two events of one checkout, record the payment once.
* Other event types are acknowledged and ignored.
* A malformed event is refused with :class:`MalformedEvent`: an amount that is not a positive integer below
  2^63, a ``created`` time that is not a Unix time from 2000 on, or one more than :data:`CLOCK_SKEW` ahead of
  this machine's clock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy.orm import Session

from daemon.billing.payments import receive_payment
from daemon.config import Settings
from daemon.db.models import MAX_ID, PaymentMethod
from daemon.services.errors import Invalid
from policies.money import AmountOutOfRange, Money, UnknownCurrency, check_amount, currency

__all__ = ["CLOCK_SKEW", "HANDLED_EVENTS", "MalformedEvent", "WebhookOutcome", "handle_event"]

log = logging.getLogger(__name__)

HANDLED_EVENTS = ("payment_intent.succeeded", "checkout.session.completed")

_CUSTOMER = re.compile(r"[Cc]?([0-9]{1,12})")

#: How far ahead of this machine's clock an event's ``created`` time may be.
CLOCK_SKEW: Final = timedelta(minutes=5)
#: The earliest ``created`` time accepted (2000-01-01).
_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: The largest amount a payment row can hold, in minor units.
_MAX_MINOR: Final = 2**63 - 1


class MalformedEvent(Invalid):
    """The event is not one the processor could have sent: resending it cannot succeed."""


@dataclass(frozen=True)
class WebhookOutcome:
    """What an event did: ``recorded`` a payment, was a ``duplicate`` of one, or was ``ignored``."""

    status: Literal["recorded", "duplicate", "ignored"]
    event_id: str
    payment_id: int | None = None
    customer_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "event_id": self.event_id,
            "payment_id": self.payment_id,
            "customer_id": self.customer_id,
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _customer(obj: Mapping[str, Any]) -> int:
    metadata = obj.get("metadata")
    named = _text(metadata.get("customer_id")) if isinstance(metadata, Mapping) else None
    named = named or _text(obj.get("client_reference_id"))
    match = _CUSTOMER.fullmatch(named.strip()) if named else None
    if match is None:
        raise Invalid("the payment names no customer (metadata.customer_id or client_reference_id)")
    number = int(match.group(1))
    if not 0 < number <= MAX_ID:
        raise Invalid(f"the payment names customer {number}, which does not exist")
    return number


def _created(value: object) -> datetime | None:
    """The event's ``created`` time, ``None`` when absent; :class:`MalformedEvent` when out of range."""
    if value is None:
        return None
    latest = datetime.now(UTC) + CLOCK_SKEW
    if type(value) is not int or not _EARLIEST.timestamp() <= value <= latest.timestamp():
        if type(value) is int and value > latest.timestamp() and value < 2**40:
            ahead = datetime.fromtimestamp(value, UTC).isoformat()
            raise MalformedEvent(f"the event is dated {ahead}, in the future; refused")
        raise MalformedEvent(f"the event's created must be a Unix time from 2000 on, got {value!r:.40}")
    return datetime.fromtimestamp(value, UTC)


def handle_event(
    session: Session, actor: str, settings: Settings, event: Mapping[str, Any], *, as_of: date | None = None
) -> WebhookOutcome:
    """Record the payment an event reports (see the module rules), in the caller's transaction."""
    event_id = _text(event.get("id"))
    kind = _text(event.get("type"))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if event_id is None or kind is None or not isinstance(obj, Mapping):
        raise MalformedEvent("the event has no id, type or data.object")
    if kind not in HANDLED_EVENTS:
        log.info("webhook event %s of type %s ignored", event_id, kind)
        return WebhookOutcome("ignored", event_id)
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        return WebhookOutcome("ignored", event_id)
    amount_field = "amount_received" if kind == "payment_intent.succeeded" else "amount_total"
    minor = obj.get(amount_field)
    if type(minor) is not int or not 0 < minor <= _MAX_MINOR:
        raise MalformedEvent(f"the event's {amount_field} must be a positive integer below 2^63, got {minor!r:.40}")
    try:
        cur = currency(str(obj.get("currency", ""))[:10])
        amount = check_amount(Money(minor, cur), f"the event's {amount_field}")
    except UnknownCurrency:
        raise Invalid(f"the event's currency {str(obj.get('currency'))[:10]!r} is unknown") from None
    except AmountOutOfRange as exc:
        raise Invalid(str(exc)) from None
    customer_id = _customer(obj)
    intent = obj.get("id") if kind == "payment_intent.succeeded" else obj.get("payment_intent")
    external = f"stripe:{intent}" if _text(intent) else f"stripe:{event_id}"
    when = _created(event.get("created"))
    received = receive_payment(
        session,
        actor,
        settings,
        customer_id=customer_id,
        amount=amount,
        method=PaymentMethod.ONLINE,
        reference=f"card payment {event_id}"[:200],
        received_at=when,
        external_id=external[:200],
        as_of=as_of,
    )
    status: Literal["recorded", "duplicate"] = "recorded" if received.created else "duplicate"
    log.info("webhook event %s: payment %s %s", event_id, received.payment.id, status)
    return WebhookOutcome(status, event_id, received.payment.id, customer_id)
