"""The payment processor's webhook: ``POST /webhooks/stripe``.

The endpoint secret (``whsec_...``) is read, at each request, from the file named by
``[payments] stripe_webhook_secret_file``; without one the endpoint answers 503. Every request's
``Stripe-Signature`` is verified against the raw body (forged or stale signatures: 400) before the event is
handled by :func:`daemon.billing.webhook.handle_event` in one transaction. Answers are JSON: 200 with what was
done (``recorded``, ``duplicate``, ``ignored``), 400 for a bad signature or body, 422 for an event that cannot
be applied (unknown customer, wrong currency), so the processor retries it after staff fix the cause.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from flask import Blueprint, request
from sqlalchemy.exc import IntegrityError

from daemon.billing.webhook import handle_event
from daemon.config import ConfigError
from daemon.services.errors import ServiceError
from web.context import db, settings

__all__ = ["bp"]

log = logging.getLogger(__name__)

bp = Blueprint("billing", __name__)

Reply = tuple[dict[str, Any], int]


def _secret() -> str | None:
    try:
        return settings().payments.stripe_webhook_secret() or None
    except ConfigError as exc:
        log.error("%s", exc)
        return None


@bp.post("/webhooks/stripe")
def stripe_webhook() -> Reply:
    secret = _secret()
    if secret is None:
        return {"error": "the payment webhook is not configured"}, 503
    payload = request.get_data()
    try:
        stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature"), secret)
    except stripe.SignatureVerificationError:
        log.warning("webhook refused: bad signature from %s", request.remote_addr)
        return {"error": "invalid signature"}, 400
    except ValueError:
        return {"error": "invalid payload"}, 400
    try:
        event = json.loads(payload)
    except ValueError:
        return {"error": "invalid payload"}, 400
    if not isinstance(event, dict):
        return {"error": "invalid payload"}, 400
    session = db()
    try:
        outcome = handle_event(session, "webhook:stripe", settings(), event)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        log.error("webhook event %s not applied: %s", event.get("id"), exc)
        return {"error": str(exc)}, 422
    except IntegrityError:
        session.rollback()  # the same payment recorded by a concurrent delivery of this event
        return {"status": "duplicate", "event_id": event.get("id")}, 200
    return outcome.to_json(), 200
