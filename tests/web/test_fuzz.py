"""Fuzzing (Hypothesis) the dashboard's forms, the API's query strings and the webhook's signed bodies: whatever
is sent, the answer is never a 500, and a refused request writes nothing (row counts of the main tables)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from daemon.db.models import MAX_ID
from tests.conftest import write_secret
from tests.web.conftest import Seeded, csrf_of, row_counts
from web import create_app

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Values that broke, or could break, a parser somewhere.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "²",
    "٣",
    "1e9",
    "NaN",
    "Infinity",
    "1" * 25,
    str(MAX_ID),
    str(MAX_ID + 1),
    str(2**63),
    str(2**64),
    "9" * 400,
    "0.001",
    "1,000.00",
    "\u0661\u0660\u0660",  # 100 in Arabic-Indic digits
    "%",
    "_",
    "\\",
    "'",
    '"',
    "<script>alert(1)</script>",
    "\x00",
    "\u202e",
    "a" * 300,
    "x" * 100_000,
    "//evil.example",
    "/\t/evil.example",
]

#: Text of every kind except lone surrogates (which cannot be sent as UTF-8).
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)

#: Any bytes a client may put in a header (as WSGI shows them: latin-1), but line breaks.
HEADER = TEXT.map(lambda t: t.encode("utf-8").decode("latin-1")).filter(lambda t: "\r" not in t and "\n" not in t)

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(st.characters(codec="utf-8"), max_size=20),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def _flashed_error(client: FlaskClient) -> bool:
    with client.session_transaction() as session:
        return any(category == "error" for category, _ in session.get("_flashes", []))


def _checked(seeded: Seeded, send: Callable[[], Any], refused: Callable[[Any], bool]) -> None:
    before = row_counts(seeded)
    response = send()
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if refused(response):
        event("refused")
        assert row_counts(seeded) == before
    else:
        event("accepted")


def _clear_flashes(client: FlaskClient) -> None:
    with client.session_transaction() as session:
        session.pop("_flashes", None)


# -- the dashboard's forms ---------------------------------------------------------------------------------------


@FUZZ
@given(username=TEXT, password=TEXT, target=TEXT, csrf_ok=st.booleans())
def test_sign_in_form(
    client: FlaskClient, seeded: Seeded, username: str, password: str, target: str, csrf_ok: bool
) -> None:
    token = csrf_of(client) if csrf_ok else "forged"
    response = client.post(
        "/login", query_string={"next": target}, data={"csrf": token, "username": username, "password": password}
    )
    assert response.status_code in (200, 302, 400, 413, 429)
    if response.status_code == 302:
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\"))
        client.post("/logout", data={"csrf": csrf_of(client, "/")})


@FUZZ
@given(
    amount=st.one_of(st.decimals(min_value=0, max_value=10_000, places=2).map(str), TEXT),
    method=st.one_of(st.sampled_from(["cash", "bank", "card"]), TEXT),
    reference=TEXT,
)
def test_payment_form(admin: FlaskClient, seeded: Seeded, amount: str, method: str, reference: str) -> None:
    _clear_flashes(admin)
    token = csrf_of(admin, "/")
    path = f"/customers/{seeded.customer_id}/payments"
    _checked(
        seeded,
        lambda: admin.post(path, data={"csrf": token, "amount": amount, "method": method, "reference": reference}),
        lambda r: r.status_code >= 400 or _flashed_error(admin),
    )


@FUZZ
@given(action=st.one_of(st.sampled_from(["throttle", "suspend", "resume"]), TEXT), reason=TEXT, which=st.booleans())
def test_state_change_form(admin: FlaskClient, seeded: Seeded, action: str, reason: str, which: bool) -> None:
    _clear_flashes(admin)
    token = csrf_of(admin, "/")
    service = seeded.service_id if which else seeded.static_service_id
    _checked(
        seeded,
        lambda: admin.post(f"/services/{service}/state", data={"csrf": token, "action": action, "reason": reason}),
        lambda r: r.status_code >= 400 or _flashed_error(admin),
    )


@FUZZ
@given(q=TEXT, state=TEXT)
def test_search_and_filters(admin: FlaskClient, seeded: Seeded, q: str, state: str) -> None:
    _checked(seeded, lambda: admin.get("/customers", query_string={"q": q}), lambda r: True)
    _checked(seeded, lambda: admin.get("/services", query_string={"state": state}), lambda r: True)


@FUZZ
@given(segment=TEXT)
def test_page_paths(admin: FlaskClient, seeded: Seeded, segment: str) -> None:
    for path in (f"/customers/{segment}", f"/services/{segment}", f"/invoices/{segment}.pdf"):
        _checked(seeded, functools.partial(admin.get, path), lambda r: True)


# -- the API -----------------------------------------------------------------------------------------------------


@FUZZ
@example(customer="1", state="active", segment="1?x=1#y", token=None)
@given(customer=TEXT, state=TEXT, segment=TEXT, token=st.one_of(st.none(), HEADER))
def test_api_query_strings_and_paths(
    client: FlaskClient, seeded: Seeded, customer: str, state: str, segment: str, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {seeded.token if token is None else token}"}
    requests: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/api/v1/services", {"customer_id": customer}),
        ("GET", "/api/v1/services", {"state": state}),
        ("GET", f"/api/v1/customers/{segment}", {}),
        ("GET", f"/api/v1/services/{segment}", {}),
        ("POST", "/api/v1/services", {}),
    ]
    for method, path, query in requests:
        response = client.open(path, method=method, query_string=query or None, headers=headers, data=segment.encode())
        assert response.status_code < 500
        assert response.mimetype == "application/json"
        if response.status_code >= 400:
            body = response.get_json()
            assert set(body) == {"error", "message"}


# -- the webhook -------------------------------------------------------------------------------------------------

SECRET = "whsec_fuzz_0123456789"
#: The clock when the tests started: strategies must not read the clock themselves (Hypothesis replays them).
STARTED = int(time.time())


@pytest.fixture
def webhook_client(seeded: Seeded, tmp_path: Path) -> FlaskClient:
    secret = write_secret(tmp_path / "stripe.secret", SECRET.encode() + b"\n")
    payments = dataclasses.replace(seeded.settings.payments, stripe_webhook_secret_file=secret)
    configured = dataclasses.replace(seeded.settings, payments=payments)
    return create_app(configured, sessions=seeded.sessions, test_config={"TESTING": True}).test_client()


def _signed(body: bytes) -> dict[str, str]:
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


@st.composite
def events(draw: st.DrawFn, customer_id: int) -> dict[str, Any]:
    """Payment events whose every field may be right, out of range, or of another JSON type."""
    now = STARTED
    obj = {
        "id": draw(st.one_of(st.just("pi_fuzz"), JSON)),
        "amount_received": draw(st.one_of(st.integers(min_value=1, max_value=100_000), st.integers(), JSON)),
        "amount_total": draw(st.one_of(st.integers(), JSON)),
        "payment_status": draw(st.one_of(st.just("paid"), JSON)),
        "currency": draw(st.one_of(st.sampled_from(["usd", "eur", "USD"]), JSON)),
        "metadata": {"customer_id": draw(st.one_of(st.just(str(customer_id)), TEXT, JSON))},
    }
    return {
        "id": draw(st.one_of(st.just("evt_fuzz"), JSON)),
        "type": draw(st.one_of(st.sampled_from(["payment_intent.succeeded", "checkout.session.completed"]), JSON)),
        "created": draw(st.one_of(st.integers(min_value=now - 86400, max_value=now + 86400), st.integers(), JSON)),
        "data": draw(st.one_of(st.just({"object": obj}), JSON)),
    }


@FUZZ
@given(data=st.data())
def test_signed_webhook_bodies(webhook_client: FlaskClient, seeded: Seeded, data: st.DataObject) -> None:
    sent = data.draw(st.one_of(JSON, events(seeded.customer_id)))
    body = json.dumps(sent).encode()
    before = row_counts(seeded)
    response = webhook_client.post("/webhooks/stripe", data=body, headers=_signed(body))
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)
    event(f"answer {response.status_code}")
    if response.status_code != 200 or response.get_json()["status"] != "recorded":
        assert row_counts(seeded) == before
