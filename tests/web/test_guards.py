"""What every route gets: a 4xx, never a 500, for ids and numbers that cannot be; JSON errors under the API and
the webhooks; a bounded request body; the security headers on every response."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.web.conftest import Seeded, csrf_of, make_app, row_counts, sign_in

BAD_IDS = [
    "2147483648",  # 2^31, one past the largest id PostgreSQL's integer column holds
    "9223372036854775808",  # 2^63
    "18446744073709551616",  # 2^64
    "1" * 25,
    "9" * 400,
    "0",
    "-1",
    "²",
    "٣",  # an Arabic-Indic digit: \d matches it, int() reads it
    "1e3",
    "0x10",
    " 1",
    "1.0",
]


def bearer(seeded: Seeded) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.token}"}


# -- ids in paths and query strings ------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", BAD_IDS)
def test_ids_that_cannot_be_are_404_on_every_page(admin: FlaskClient, seeded: Seeded, ident: str) -> None:
    before = row_counts(seeded)
    token = csrf_of(admin, "/")
    for path in (f"/customers/{ident}", f"/services/{ident}", f"/invoices/{ident}.pdf"):
        assert admin.get(path).status_code == 404, path
    for path, form in (
        (f"/customers/{ident}/payments", {"csrf": token, "amount": "10.00", "method": "cash"}),
        (f"/services/{ident}/state", {"csrf": token, "action": "suspend", "reason": "x"}),
    ):
        assert admin.post(path, data=form).status_code == 404, path
    assert row_counts(seeded) == before


@pytest.mark.parametrize("ident", BAD_IDS)
def test_ids_that_cannot_be_are_json_404_or_400_on_the_api(client: FlaskClient, seeded: Seeded, ident: str) -> None:
    for path in (f"/api/v1/customers/{ident}", f"/api/v1/services/{ident}"):
        response = client.get(path, headers=bearer(seeded))
        assert response.status_code == 404 and response.get_json()["error"] == "not_found", path
    response = client.get("/api/v1/services", query_string={"customer_id": ident}, headers=bearer(seeded))
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad_request",
        "message": "customer_id must be a number from 1 to 2147483647",
    }


def test_the_largest_id_is_a_plain_not_found(admin: FlaskClient, client: FlaskClient, seeded: Seeded) -> None:
    largest = 2**31 - 1
    assert admin.get(f"/customers/{largest}").status_code == 404
    response = admin.get(f"/api/v1/services/{largest}", headers=bearer(seeded))
    assert response.status_code == 404 and response.get_json()["message"] == f"no service {largest}"
    listed = admin.get("/api/v1/services", query_string={"customer_id": largest}, headers=bearer(seeded))
    assert listed.status_code == 200 and listed.get_json() == []


@pytest.mark.parametrize("q", ["1" * 25, "9223372036854775808", "²", "٣", "%", "_", "\\", "'; drop table x"])
def test_odd_search_text_finds_nothing_without_failing(admin: FlaskClient, q: str) -> None:
    response = admin.get("/customers", query_string={"q": q})
    assert response.status_code == 200
    assert "Ada Lovelace" not in response.get_data(as_text=True)


def test_over_long_or_control_search_text_is_refused_clearly(admin: FlaskClient) -> None:
    response = admin.get("/customers", query_string={"q": "a" * 100_000})
    assert response.status_code == 400
    assert "search text must be at most 200 characters" in response.get_data(as_text=True)
    for q in ("\x00", "Ada\x00", "\x1b[31m"):
        response = admin.get("/customers", query_string={"q": q})
        assert response.status_code == 400
        assert "search text must not contain control characters" in response.get_data(as_text=True)
    assert admin.get("/customers", query_string={"q": "Ada" + " " * 300}).status_code == 200


# -- JSON errors on the API and the webhooks ---------------------------------------------------------------------


def test_every_api_error_is_json(client: FlaskClient, seeded: Seeded) -> None:
    headers = bearer(seeded)
    cases = [
        (client.get("/api/v1/nothing-here", headers=headers), 404, "not_found"),
        (client.get("/api/v1/customers/1/extra", headers=headers), 404, "not_found"),
        (client.post("/api/v1/services", headers=headers), 405, "method_not_allowed"),
        (client.delete(f"/api/v1/customers/{seeded.customer_id}", headers=headers), 405, "method_not_allowed"),
        (client.get("/api/v1/services", headers={"Authorization": "Bearer " + "x" * 5000}), 401, "unauthorized"),
    ]
    for response, status, code in cases:
        assert response.status_code == status
        assert response.mimetype == "application/json"
        body = response.get_json()
        assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    assert "GET" in cases[2][0].headers["Allow"]


def test_an_unexpected_failure_under_the_api_is_a_json_500(seeded: Seeded) -> None:
    app = make_app(seeded)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/api/v1/boom", "boom", boom)
    app.add_url_rule("/boom", "page-boom", boom)
    client = app.test_client()
    response = client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_server_error",
        "message": "the server failed to answer; the error is logged",
    }
    assert "a bug" not in response.get_data(as_text=True)
    page = client.get("/boom")
    assert page.status_code == 500 and page.mimetype == "text/html"


def test_dashboard_errors_stay_html(admin: FlaskClient) -> None:
    response = admin.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_oversize_forms_are_refused_and_write_nothing(admin: FlaskClient, seeded: Seeded) -> None:
    before = row_counts(seeded)
    token = csrf_of(admin, "/")
    big = "x" * 1_100_000
    for path, form in (
        (f"/customers/{seeded.customer_id}/payments", {"csrf": token, "amount": "1.00", "reference": big}),
        (f"/services/{seeded.service_id}/state", {"csrf": token, "action": "suspend", "reason": big}),
        ("/login", {"csrf": token, "username": "admin", "password": big}),
    ):
        assert admin.post(path, data=form).status_code == 413, path
    assert row_counts(seeded) == before


def test_the_request_bound_is_configurable(seeded: Seeded) -> None:
    app = make_app(seeded, max_request_bytes=4096)
    assert app.config["MAX_CONTENT_LENGTH"] == 4096
    response = app.test_client().post("/webhooks/stripe", data=b"{" + b" " * 5000 + b"}")
    assert response.status_code in (413, 503)  # 503 only when no webhook secret is configured
    response = app.test_client().post("/login", data={"username": "admin", "password": "x" * 5000})
    assert response.status_code == 413


# -- security headers on every route -----------------------------------------------------------------------------


def _paths(app: Flask, seeded: Seeded) -> Iterator[tuple[str, str]]:
    """Every route of ``app`` as (method, path), with the seeded records' ids filled in."""
    values = {"customer_id": seeded.customer_id, "service_id": seeded.service_id, "invoice_id": 1}
    rule: Rule
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values.get(m.group(1), "style.css")), rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path


def _check_headers(headers: dict[str, str], *, https: bool) -> None:
    csp = headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["default-src"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert ("Strict-Transport-Security" in headers) == https


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_every_route_sends_the_security_headers(seeded: Seeded, https: bool) -> None:
    base = "https://isp.example.net" if https else "http://127.0.0.1:8080"
    app = make_app(seeded, base_url=base)
    client = app.test_client()
    sign_in(client)
    token = csrf_of(client, "/")
    seen = 0
    for method, path in _paths(app, seeded):
        headers = bearer(seeded) if path.startswith("/api/") else {}
        data = {"csrf": token} if method == "POST" and not path.startswith("/webhooks/") else None
        with client.open(path, method=method, headers=headers, data=data, base_url=base) as response:
            # 503: the webhook answers so when no webhook secret is configured, as here
            assert response.status_code < 500 or (path, response.status_code) == ("/webhooks/stripe", 503)
            _check_headers(dict(response.headers), https=https)
        seen += 1
    assert seen >= 15
    for path in ("/no-such-page", "/api/v1/no-such-thing", "/login"):
        _check_headers(dict(client.get(path, base_url=base).headers), https=https)
    anonymous = app.test_client()
    _check_headers(dict(anonymous.get("/", base_url=base).headers), https=https)


def test_no_page_has_inline_script_or_style(admin: FlaskClient, seeded: Seeded) -> None:
    pages = ["/", "/customers", f"/customers/{seeded.customer_id}", "/services", f"/services/{seeded.service_id}"]
    pages += ["/plans", "/routers", "/customers?q=Ada"]
    for path in pages:
        html = admin.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html, re.I), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html, re.I), path
    anonymous = admin.application.test_client()
    html = anonymous.get("/login").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", html, re.I)
