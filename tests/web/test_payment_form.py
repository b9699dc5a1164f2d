"""The counter payment form: a payment posted twice is recorded once, and no input makes it fail with a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select, text
from werkzeug.test import TestResponse

from daemon.db.models import AuditEntry, IdempotencyKey, LedgerEntry, Payment
from tests.web.conftest import SUPPORT_PASSWORD, Seeded, payment_form, sign_in


def counts(seeded: Seeded) -> tuple[int, int, int, int]:
    with seeded.sessions() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Payment, LedgerEntry, AuditEntry, IdempotencyKey)
        )


def shown_after(client: FlaskClient, response: TestResponse) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def support(client: FlaskClient) -> FlaskClient:
    sign_in(client, "support", SUPPORT_PASSWORD)
    return client


def test_the_same_form_posted_again_records_one_payment(support: FlaskClient, seeded: Seeded) -> None:
    page = f"/customers/{seeded.customer_id}"
    form = payment_form(support, page, amount="12.50", method="cash", reference="R-1")
    first = shown_after(support, support.post(f"{page}/payments", data=form))
    assert "Payment of 12.50 USD recorded." in first
    again = shown_after(support, support.post(f"{page}/payments", data=form))
    with seeded.sessions() as s:
        (payment_id,) = s.scalars(select(Payment.id)).all()
    assert f"Already recorded: payment #{payment_id} of 12.50 USD." in again
    # The same one-time token with other details is refused, not recorded.
    changed = shown_after(support, support.post(f"{page}/payments", data={**form, "amount": "99.00"}))
    assert "Payment not recorded: the request" in changed and "already used with other details" in changed
    assert counts(seeded)[0] == 1
    # A fresh form records a second payment.
    fresh = payment_form(support, page, amount="12.50", method="cash", reference="R-1")
    assert fresh["submission"] != form["submission"]
    assert "Payment of 12.50 USD recorded." in shown_after(support, support.post(f"{page}/payments", data=fresh))
    assert counts(seeded)[0] == 2


def test_two_concurrent_posts_of_one_form_record_one_payment(app: Flask, seeded: Seeded) -> None:
    """Two web requests at once (a double click, two tabs), each in its own thread, connection and transaction,
    on the real database: exactly one payment; the other answers with it."""
    clients = [app.test_client() for _ in range(2)]
    for c in clients:
        sign_in(c, "support", SUPPORT_PASSWORD)
    page = f"/customers/{seeded.customer_id}"
    form = payment_form(clients[0], page, amount="30.00", method="card")
    csrf = [payment_form(c, page)["csrf"] for c in clients]
    start = threading.Barrier(2)
    answers: list[str] = ["", ""]

    def post(i: int) -> None:
        start.wait()
        response = clients[i].post(f"{page}/payments", data={**form, "csrf": csrf[i]})
        answers[i] = shown_after(clients[i], response)

    for _ in range(3):  # three rounds, each with a fresh form
        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted("Payment of 30.00 USD recorded." in a for a in answers) == [False, True]
        assert sum("Already recorded: payment #" in a for a in answers) == 1
        form = payment_form(clients[0], page, amount="30.00", method="card")
    payments, ledger_rows, _, keys = counts(seeded)
    assert (payments, ledger_rows, keys) == (3, 3, 3)


BAD_FORMS: list[tuple[dict[str, str], str]] = [
    ({"amount": "90000000000000000"}, "out of range: at most 1000000000.00 USD"),
    ({"amount": "1000000000.01"}, "out of range: at most 1000000000.00 USD"),
    ({"amount": "9223372036854775808"}, "out of range"),
    ({"amount": "9" * 100_000}, "out of range"),
    ({"amount": "9e16"}, "invalid amount"),
    ({"amount": "1,000.00"}, "invalid amount"),
    ({"amount": "NaN"}, "invalid amount"),
    ({"amount": ""}, "invalid amount"),
    ({"amount": "0"}, "must be above zero"),
    ({"amount": "-5"}, "must be above zero"),
    ({"amount": "1.001"}, "USD has 2 decimal places"),
    ({"amount": "30.00 EUR"}, "invalid amount"),
    ({"amount": "30.00", "currency": "EUR"}, "the amount is in 'EUR' but this installation bills in USD"),
    ({"amount": "30.00", "method": "barter"}, "unknown payment method 'barter'"),
    ({"amount": "30.00", "reference": "x" * 5000}, "reference is too long"),
    ({"amount": "30.00", "reference": "bad\x00ref"}, "reference"),
    ({"amount": "30.00", "submission": ""}, "the form is out of date"),
    ({"amount": "30.00", "submission": "has spaces in it"}, "invalid request key"),
    ({"amount": "30.00", "submission": "k" * 201}, "invalid request key"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_FORMS)
def test_a_refused_payment_is_a_message_on_the_form_and_writes_nothing(
    support: FlaskClient, seeded: Seeded, fields: dict[str, str], message: str
) -> None:
    page = f"/customers/{seeded.customer_id}"
    before = counts(seeded)
    shown = shown_after(support, support.post(f"{page}/payments", data=payment_form(support, page, **fields)))
    assert "Payment not recorded: " in shown and message in shown.replace("&#39;", "'")
    assert counts(seeded) == before


def test_a_payment_for_a_customer_deleted_meanwhile_says_so(support: FlaskClient, seeded: Seeded) -> None:
    page = f"/customers/{seeded.customer_id}"
    form = payment_form(support, page, amount="5.00")
    before = counts(seeded)
    shown = shown_after(support, support.post("/customers/987654/payments", data=form))
    assert "Payment not recorded: customer 987654 no longer exists." in shown
    assert counts(seeded) == before


@pytest.mark.parametrize(
    "fault",
    [
        # the ledger row cannot be written
        lambda s: s.execute(text("ALTER TABLE ledger RENAME TO ledger_gone")),
        # the request key cannot be stored
        lambda s: s.execute(text("ALTER TABLE idempotency_keys RENAME TO keys_gone")),
    ],
    ids=["ledger", "keys"],
)
def test_a_database_error_is_a_message_on_the_form_and_writes_nothing(
    support: FlaskClient, seeded: Seeded, fault: Callable[..., object]
) -> None:
    page = f"/customers/{seeded.customer_id}"
    form = payment_form(support, page, amount="5.00")
    before = counts(seeded)
    with seeded.sessions.begin() as s:
        fault(s)
    try:
        response = support.post(f"{page}/payments", data=form)
    finally:
        with seeded.sessions.begin() as s:
            tables = set(inspect(s.connection()).get_table_names())
            for gone, name in (("ledger_gone", "ledger"), ("keys_gone", "idempotency_keys")):
                if gone in tables:
                    s.execute(text(f"ALTER TABLE {gone} RENAME TO {name}"))
    shown = shown_after(support, response)
    assert "Payment not recorded: the database could not store it; nothing was written. Try again." in shown
    assert counts(seeded) == before
