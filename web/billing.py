"""The payment processor's webhook: ``POST /webhooks/stripe``.

The endpoint secret (``whsec_...``) is read, at each request, from the file named by
``[payments] stripe_webhook_secret_file``; without one the endpoint answers 503. Every request's
``Stripe-Signature`` is verified against the raw body (forged or stale signatures: 400) before the body is parsed
and the event handled by :func:`daemon.billing.webhook.handle_event` in one transaction. A body over ``[web]
max_request_bytes`` is refused (413) before it is read. Answers are JSON: 200 with what was done (``recorded``,
``duplicate``, ``ignored``); errors in the API's shape (``{"error": code, "message": text}``): 400 for a bad
signature, a body that is not one JSON object, or a malformed event (an amount or date out of range, an event
dated in the future); 422 for an event that cannot be applied (unknown customer, wrong currency), so the
processor retries it after staff fix the cause.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from flask import Blueprint, abort, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from daemon.billing.webhook import MalformedEvent, handle_event
from daemon.config import ConfigError
from daemon.services.errors import ServiceError
from web.context import db, settings
from web.guards import json_error

__all__ = ["bp"]

log = logging.getLogger(__name__)

bp = Blueprint("billing", __name__)

#: How old a signature may be, in seconds (Stripe's own default).
TOLERANCE = 300


def _secret() -> str | None:
    try:
        return settings().payments.stripe_webhook_secret() or None
    except ConfigError as exc:
        log.error("%s", exc)
        return None


def _event(payload: bytes) -> dict[str, Any] | None:
    """The JSON object ``payload`` holds, or ``None`` (not UTF-8, not JSON, nested too deep, not an object)."""
    try:
        event = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


@bp.post("/webhooks/stripe")
def stripe_webhook() -> ResponseReturnValue:
    secret = _secret()
    if secret is None:
        return json_error(503, "service_unavailable", "the payment webhook is not configured")
    limit = request.max_content_length
    if request.content_length is not None and limit is not None and request.content_length > limit:
        abort(413, description=f"the request body is over {limit} bytes")
    payload = request.get_data(cache=False)  # a body without a length is cut off at the same bound (413)
    try:
        stripe.WebhookSignature.verify_header(payload, request.headers.get("Stripe-Signature"), secret, TOLERANCE)
    except stripe.SignatureVerificationError:
        log.warning("webhook refused: bad signature from %s", request.remote_addr)
        return json_error(400, "invalid_signature", "invalid signature")
    except UnicodeDecodeError:
        return json_error(400, "invalid_payload", "the body is not UTF-8 text")
    event = _event(payload)
    if event is None:
        return json_error(400, "invalid_payload", "the body must be one JSON object, the event")
    session = db()
    try:
        outcome = handle_event(session, "webhook:stripe", settings(), event)
        session.commit()
    except MalformedEvent as exc:
        session.rollback()
        log.warning("webhook event refused: %s", exc)
        return json_error(400, "invalid_event", str(exc))
    except ServiceError as exc:
        session.rollback()
        log.error("webhook event %s not applied: %s", str(event.get("id"))[:80], exc)
        return json_error(422, "not_applied", str(exc))
    except IntegrityError:
        session.rollback()  # the same payment recorded by a concurrent delivery of this event
        return {"status": "duplicate", "event_id": event.get("id")}, 200
    return outcome.to_json(), 200
