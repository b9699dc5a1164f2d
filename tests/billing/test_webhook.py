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
    assert forged.status_code == 400 and forged.get_json() == {"error": "invalid signature"}
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
    assert reply.status_code == 422 and "customer 987654 not found" in reply.get_json()["error"]
    other = json.dumps({"id": "evt_3", "type": "customer.created", "data": {"object": {}}}).encode()
    reply = client.post("/webhooks/stripe", data=other, headers=signed(other))
    assert reply.status_code == 200 and reply.get_json()["status"] == "ignored"
    assert payments(db) == 0


@pytest.mark.parametrize("cents", [10**11 + 1, 9 * 10**16, 2**63 - 1, 2**63, 10**30])
def test_an_amount_beyond_the_limit_is_refused_and_writes_nothing(
    client: FlaskClient, db: Session, owing: int, cents: int
) -> None:
    body = event(owing, cents, event_id=f"evt_big_{cents}", intent=f"pi_big_{cents}")
    reply = client.post("/webhooks/stripe", data=body, headers=signed(body))
    assert reply.status_code == 422
    assert "amount_received" in reply.get_json()["error"]
    assert "is out of range: at most 1000000000.00 USD" in reply.get_json()["error"]
    assert payments(db) == 0
    db.rollback()  # let the web request write
    fits = event(owing, 10**11, event_id="evt_max", intent="pi_max")
    assert client.post("/webhooks/stripe", data=fits, headers=signed(fits)).status_code == 200
    assert payments(db) == 1
