"""The payment webhook over Flask's test client: valid, forged, stale, replayed and unusable events."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from werkzeug.test import create_environ, run_wsgi_app

from daemon.billing import run_billing
from daemon.config import Settings
from daemon.db import session_factory
from daemon.db.models import Payment
from daemon.services import invoices
from tests.billing.conftest import World
from web import create_app

SECRET = "whsec_test_0123456789abcdef"


def signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def event(customer: object, cents: int = 3000, *, event_id: str = "evt_1", intent: str = "pi_1") -> bytes:
    body = {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "created": 1_770_000_000,
        "data": {
            "object": {
                "id": intent,
                "object": "payment_intent",
                "amount_received": cents,
                "currency": "usd",
                "metadata": {"customer_id": str(customer)},
            }
        },
    }
    return json.dumps(body).encode()


@pytest.fixture
def client(engine: Engine, settings: Settings, tmp_path: Path) -> FlaskClient:
    secret_file = tmp_path / "stripe.secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    payments = dataclasses.replace(settings.payments, stripe_webhook_secret_file=secret_file)
    app = create_app(
        dataclasses.replace(settings, payments=payments),
        sessions=session_factory(engine),
        test_config={"TESTING": True},
    )
    return app.test_client()


@pytest.fixture
def owing(db: Session, world: World, settings: Settings) -> int:
    world.plan("home-30", "30.00")
    cid = world.customer()
    world.service(cid, "home-30", date(2026, 1, 1))
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    run_billing(engine, settings, as_of=date(2026, 2, 1))
    return cid


def payments(db: Session) -> int:
    db.rollback()
    return int(db.scalar(select(func.count()).select_from(Payment)) or 0)


def test_valid_event_pays_and_replays_are_ignored(client: FlaskClient, db: Session, owing: int) -> None:
    body = event(f"C{owing}")
    first = client.post("/webhooks/stripe", data=body, headers=signed(body))
    assert first.status_code == 200
    reply: dict[str, Any] = first.get_json()
    assert reply["status"] == "recorded" and reply["customer_id"] == owing
    assert invoices.list_invoices(db, customer_id=owing)[0].status == "paid"
    db.rollback()  # end the read: SQLite transactions here hold the write lock

    replay = client.post("/webhooks/stripe", data=body, headers=signed(body))
    assert replay.status_code == 200 and replay.get_json()["status"] == "duplicate"
    assert payments(db) == 1


def test_forged_and_stale_signatures_are_refused(client: FlaskClient, db: Session, owing: int) -> None:
    body = event(owing)
    forged = client.post("/webhooks/stripe", data=body, headers=signed(body, secret="whsec_attacker"))
    assert forged.status_code == 400 and forged.get_json() == {
        "error": "invalid_signature",
        "message": "invalid signature",
    }
    stale = client.post("/webhooks/stripe", data=body, headers=signed(body, at=int(time.time()) - 3600))
    assert stale.status_code == 400
    tampered = client.post("/webhooks/stripe", data=event(owing, 999_999), headers=signed(body))
    assert tampered.status_code == 400
    unsigned = client.post("/webhooks/stripe", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 400
    assert payments(db) == 0


def test_unusable_and_other_events(client: FlaskClient, db: Session, owing: int) -> None:
    nobody = event(987654, event_id="evt_2", intent="pi_2")
    reply = client.post("/webhooks/stripe", data=nobody, headers=signed(nobody))
    assert reply.status_code == 422 and "customer 987654 not found" in reply.get_json()["message"]
    for number in ("C999999999999", "2147483648", "0"):
        beyond = event(number, event_id="evt_4", intent="pi_4")
        reply = client.post("/webhooks/stripe", data=beyond, headers=signed(beyond))
        assert reply.status_code == 422 and "which does not exist" in reply.get_json()["message"]
    other = json.dumps({"id": "evt_3", "type": "customer.created", "data": {"object": {}}}).encode()
    reply = client.post("/webhooks/stripe", data=other, headers=signed(other))
    assert reply.status_code == 200 and reply.get_json()["status"] == "ignored"
    assert payments(db) == 0


@pytest.mark.parametrize("cents", [10**11 + 1, 9 * 10**16, 2**63 - 1])
def test_an_amount_beyond_the_limit_is_refused_and_writes_nothing(
    client: FlaskClient, db: Session, owing: int, cents: int
) -> None:
    body = event(owing, cents, event_id=f"evt_big_{cents}", intent=f"pi_big_{cents}")
    reply = client.post("/webhooks/stripe", data=body, headers=signed(body))
    assert reply.status_code == 422
    assert "amount_received" in reply.get_json()["message"]
    assert "is out of range: at most 1000000000.00 USD" in reply.get_json()["message"]
    assert payments(db) == 0
    db.rollback()  # let the web request write
    fits = event(owing, 10**11, event_id="evt_max", intent="pi_max")
    assert client.post("/webhooks/stripe", data=fits, headers=signed(fits)).status_code == 200
    assert payments(db) == 1


def _body(owing: int, **changes: object) -> bytes:
    """A valid event for ``owing`` with top-level fields or ``amount_received`` replaced."""
    body = json.loads(event(owing))
    for key, value in changes.items():
        if key == "amount_received":
            body["data"]["object"][key] = value
        else:
            body[key] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"created": int(time.time()) + 3600}, "in the future; refused"),
        ({"created": 10**30}, "must be a Unix time from 2000 on"),
        ({"created": -1}, "must be a Unix time from 2000 on"),
        ({"created": 1.5e9}, "must be a Unix time from 2000 on"),
        ({"created": "1770000000"}, "must be a Unix time from 2000 on"),
        ({"amount_received": 2**64}, "must be a positive integer below 2^63"),
        ({"amount_received": 10**400}, "must be a positive integer below 2^63"),
        ({"amount_received": -3000}, "must be a positive integer below 2^63"),
        ({"amount_received": True}, "must be a positive integer below 2^63"),
        ({"amount_received": 30.0}, "must be a positive integer below 2^63"),
        ({"data": []}, "has no id, type or data.object"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_signed_but_malformed_events_are_refused_with_400(
    client: FlaskClient, db: Session, owing: int, changes: dict[str, object], message: str
) -> None:
    body = _body(owing, **changes)
    reply = client.post("/webhooks/stripe", data=body, headers=signed(body))
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert reply.get_json()["error"] == "invalid_event"
    assert message in reply.get_json()["message"]
    assert payments(db) == 0


def test_an_event_within_the_clock_skew_is_accepted(client: FlaskClient, db: Session, owing: int) -> None:
    body = _body(owing, created=int(time.time()) + 60)
    reply = client.post("/webhooks/stripe", data=body, headers=signed(body))
    assert reply.status_code == 200 and reply.get_json()["status"] == "recorded"
    assert payments(db) == 1


@pytest.mark.parametrize(
    "body",
    [b"[]", b'[{"id": "evt_1"}]', b"42", b'"text"', b"null", b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty-array", "array", "number", "string", "null", "truncated", "not-utf8", "nested"],
)
def test_signed_bodies_that_are_not_one_event_are_refused(
    client: FlaskClient, db: Session, owing: int, body: bytes
) -> None:
    reply = client.post("/webhooks/stripe", data=body, headers=signed(body) if body != b"\xff\xfe" else {})
    assert reply.status_code == 400
    assert reply.get_json()["error"] in ("invalid_payload", "invalid_signature")
    assert payments(db) == 0


def test_an_oversize_body_is_refused_before_it_is_read(client: FlaskClient, db: Session, owing: int) -> None:
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    assert limit == 1_048_576
    big = b"x" * (limit + 1)
    reply = client.post("/webhooks/stripe", data=big, headers=signed(big))
    assert reply.status_code == 413
    assert reply.get_json()["error"] == "request_entity_too_large"

    class Endless:
        """A body that fails the test if it is read past the bound."""

        read_bytes = 0

        def read(self, size: int = -1) -> bytes:
            chunk = 65536 if size < 0 else min(size, 65536)
            self.read_bytes += chunk
            assert self.read_bytes <= 2 * limit, "the body was read past the bound"
            return b"x" * chunk

    stream = Endless()
    environ = create_environ("/webhooks/stripe", method="POST", headers=signed(b""))
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(200 * 1024 * 1024)})
    _, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status.startswith("413") and stream.read_bytes == 0
    assert payments(db) == 0


def test_webhook_errors_are_json(client: FlaskClient) -> None:
    wrong_method = client.get("/webhooks/stripe")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"] == "method_not_allowed"
    assert "POST" in wrong_method.headers["Allow"]
    missing = client.post("/webhooks/paypal", data=b"{}")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
