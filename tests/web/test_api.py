"""The REST API: bearer tokens, JSON bodies, JSON errors."""

from __future__ import annotations

from flask.testing import FlaskClient

from daemon.services import users
from tests.web.conftest import PPPOE_PASSWORD, Seeded


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requests_without_a_valid_token_get_401_json(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, auth("eb_not-a-token")):
        response = client.get("/api/v1/services", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"


def test_lists_and_details(client: FlaskClient, seeded: Seeded) -> None:
    services = client.get("/api/v1/services", headers=auth(seeded.token)).get_json()
    assert {s["id"] for s in services} == {seeded.service_id, seeded.static_service_id}
    assert all(s["state"] == "active" for s in services)
    body = client.get(f"/api/v1/services/{seeded.service_id}", headers=auth(seeded.token)).get_data(as_text=True)
    assert PPPOE_PASSWORD not in body
    detail = client.get(f"/api/v1/services/{seeded.service_id}", headers=auth(seeded.token)).get_json()
    assert detail["pppoe_login"] == "ada"
    assert detail["diagnosis"]["headline"].startswith("Active on plan home-10")
    customer = client.get(f"/api/v1/customers/{seeded.customer_id}", headers=auth(seeded.token)).get_json()
    assert customer["name"] == "Ada Lovelace"
    plans = client.get("/api/v1/plans", headers=auth(seeded.token)).get_json()
    assert plans[0]["name"] == "home-10"
    routers = client.get("/api/v1/routers", headers=auth(seeded.token)).get_json()
    assert [r["name"] for r in routers] == ["core1", "edge2"]


def test_filters_are_validated(client: FlaskClient, seeded: Seeded) -> None:
    response = client.get("/api/v1/services?state=sleeping", headers=auth(seeded.token))
    assert response.status_code == 400
    assert "unknown state" in response.get_json()["message"]
    assert client.get("/api/v1/services?customer_id=x", headers=auth(seeded.token)).status_code == 400
    filtered = client.get(f"/api/v1/services?customer_id={seeded.customer_id}&state=active", headers=auth(seeded.token))
    assert len(filtered.get_json()) == 2
    missing = client.get("/api/v1/services/999", headers=auth(seeded.token))
    assert missing.status_code == 404 and missing.get_json()["message"] == "no service 999"


def test_a_revoked_token_stops_working(client: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions.begin() as s:
        (token,) = users.list_tokens(s, "admin")
        users.revoke_token(s, "test", token.id)
    assert client.get("/api/v1/services", headers=auth(seeded.token)).status_code == 401
