"""The dashboard as support staff use it: sign in, find a customer, see why a service is slow or cut off."""

from __future__ import annotations

from datetime import date, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select, update

from daemon.billing.run import run_billing
from daemon.db.models import AuditEntry, Router, RouterOp, RouterStatus, Service, UsageSample, utcnow
from daemon.services import customers, payments, plans, services, users
from policies.desired import ServiceState
from tests.web.conftest import PPPOE_PASSWORD, Seeded, csrf_of, payment_form, sign_in


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/services")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/services")


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client: FlaskClient) -> None:
    response = client.post("/login", data={"csrf": csrf_of(client), "username": "admin", "password": "nope"})
    assert response.status_code == 200
    assert "Unknown user name or wrong password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": "x"})
    assert response.status_code == 400


def test_sign_in_returns_to_the_page_asked_for_and_sign_out_ends_the_session(client: FlaskClient) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login?next=/routers", data={"csrf": token, "username": "support", "password": "support staff password"}
    )
    assert response.headers["Location"] == "/routers"
    assert "core1" in client.get("/routers").get_data(as_text=True)
    client.post("/logout", data={"csrf": csrf_of(client, "/")})
    assert client.get("/routers").status_code == 302


def test_an_offsite_next_is_ignored(client: FlaskClient) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login?next=//evil.example/", data={"csrf": token, "username": "admin", "password": "correct horse battery"}
    )
    assert response.headers["Location"] == "/"


def test_overview_counts_services_and_lists_routers(admin: FlaskClient) -> None:
    page = admin.get("/").get_data(as_text=True)
    assert "core1" in page and "edge2" in page
    assert '>2</div><div class="l"><a href="/services?state=active">active</a>' in page


def test_customer_search_and_page(admin: FlaskClient, seeded: Seeded) -> None:
    found = admin.get("/customers?q=lovelace").get_data(as_text=True)
    assert "Ada Lovelace" in found
    assert "No customers match" in admin.get("/customers?q=nobody").get_data(as_text=True)
    page = admin.get(f"/customers/{seeded.customer_id}").get_data(as_text=True)
    assert "ada@example.net" in page and "home-10" in page
    assert admin.get("/customers/9999").status_code == 404


def test_customer_search_takes_percent_and_underscore_literally(admin: FlaskClient, seeded: Seeded) -> None:
    def search(q: str) -> str:
        return admin.get("/customers", query_string={"q": q}).get_data(as_text=True)

    for wildcard in ("%", "_", "a%e", "ada_lovelace", "%@example.net"):
        page = search(wildcard)
        assert "No customers match" in page and "Ada Lovelace" not in page
    with seeded.sessions.begin() as s:
        customers.add_customer(s, "test", name="Bob 100%_Ruiz", email="bob@example.net")
    for literal in ("100%_", "%", "_"):
        page = search(literal)
        assert "Bob 100%_Ruiz" in page and "Ada Lovelace" not in page


def test_service_page_explains_a_suspension_and_an_unreachable_router(admin: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions.begin() as s:
        s.execute(
            update(Service)
            .where(Service.id == seeded.service_id)
            .values(state=ServiceState.SUSPENDED, state_reason="invoice INV-7 unpaid 21 days")
        )
        s.execute(
            update(Router)
            .where(Router.name == "core1")
            .values(status=RouterStatus.DOWN, last_error="connection refused")
        )
    page = admin.get(f"/services/{seeded.service_id}").get_data(as_text=True)
    assert "Suspended since" in page and "invoice INV-7 unpaid 21 days" in page
    assert "Router core1 is unreachable" in page and "connection refused" in page
    assert "change(s) waiting to reach the router" in page
    assert PPPOE_PASSWORD not in page


def test_service_page_shows_credit_after_an_overpayment(admin: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions.begin() as s:
        payments.record_payment(
            s, "test", seeded.settings, customer_id=seeded.customer_id, amount="12.50", method="cash", reference="R1"
        )
    page = admin.get(f"/services/{seeded.service_id}").get_data(as_text=True)
    assert "12.50 USD in credit" in page
    assert "R1" in admin.get(f"/customers/{seeded.customer_id}").get_data(as_text=True)


def test_services_can_be_filtered_by_state(admin: FlaskClient, seeded: Seeded) -> None:
    assert "100.64.0.7" in admin.get("/services?state=active").get_data(as_text=True)
    assert "No services." in admin.get("/services?state=suspended").get_data(as_text=True)
    assert "home-10" in admin.get("/plans").get_data(as_text=True)


def test_dates_render_in_the_billing_time_zone(admin: FlaskClient, seeded: Seeded) -> None:
    page = admin.get(f"/services/{seeded.service_id}").get_data(as_text=True)
    assert date(2026, 1, 1).isoformat() in page
    assert "UTC" in page


def test_readonly_role_can_sign_in(client: FlaskClient) -> None:
    sign_in(client, "support", "support staff password")
    assert client.get("/").status_code == 200


def test_support_suspends_and_resumes_a_service_from_its_page(client: FlaskClient, seeded: Seeded) -> None:
    sign_in(client, "support", "support staff password")
    page = f"/services/{seeded.service_id}"
    response = client.post(
        f"{page}/state", data={"csrf": csrf_of(client, page), "action": "suspend", "reason": "fraud check"}
    )
    assert response.status_code == 302
    shown = client.get(page).get_data(as_text=True)
    assert "Suspended since" in shown and "fraud check" in shown
    assert "the router follows within seconds" in shown
    with seeded.sessions() as s:
        svc = s.get(Service, seeded.service_id)
        assert svc is not None and svc.state is ServiceState.SUSPENDED
        ops = s.scalars(select(RouterOp.op).where(RouterOp.service_id == seeded.service_id)).all()
        assert "disconnect" in ops
        audit = s.scalars(select(AuditEntry.actor).where(AuditEntry.entity == "service")).all()
        assert "web:support" in audit

    client.post(f"{page}/state", data={"csrf": csrf_of(client, page), "action": "resume"})
    assert "Active on plan home-10" in client.get(page).get_data(as_text=True)


def test_state_actions_are_refused_without_csrf_or_for_unknown_actions(client: FlaskClient, seeded: Seeded) -> None:
    sign_in(client, "support", "support staff password")
    page = f"/services/{seeded.service_id}"
    assert client.post(f"{page}/state", data={"action": "suspend"}).status_code == 400
    assert client.post(f"{page}/state", data={"csrf": csrf_of(client, page), "action": "terminate"}).status_code == 400
    assert (
        client.post("/services/999/state", data={"csrf": csrf_of(client, page), "action": "suspend"}).status_code == 404
    )
    with seeded.sessions() as s:
        svc = s.get(Service, seeded.service_id)
        assert svc is not None and svc.state is ServiceState.ACTIVE


def test_readonly_users_cannot_change_a_service(client: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions.begin() as s:
        users.create_user(s, "test", "viewer", "viewer password 123", role="readonly")
    sign_in(client, "viewer", "viewer password 123")
    page = f"/services/{seeded.service_id}"
    assert "Suspend</button>" not in client.get(page).get_data(as_text=True)
    response = client.post(f"{page}/state", data={"csrf": csrf_of(client, page), "action": "suspend"})
    assert response.status_code == 403


def test_a_payment_at_the_counter_releases_a_suspended_customer_at_once(client: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions() as s:
        bind = s.get_bind()
    # Two billing runs: October's invoice is issued on November 1 and due 14 days later.
    run_billing(bind, seeded.settings, as_of=date(2026, 11, 1))  # type: ignore[arg-type]
    with seeded.sessions.begin() as s:
        s.execute(
            update(Service)
            .where(Service.customer_id == seeded.customer_id)
            .values(state=ServiceState.SUSPENDED, state_reason="dunning: 60.00 USD unpaid, 30 days past due")
        )
    sign_in(client, "support", "support staff password")
    page = f"/customers/{seeded.customer_id}"
    shown = client.get(page).get_data(as_text=True)
    assert "(owed)" in shown
    owed = shown.split('data-testid="balance">')[1].split(" USD")[0]

    bad = client.post(f"{page}/payments", data=payment_form(client, page, amount="-5", method="cash"))
    assert bad.status_code == 302
    assert "Payment not recorded" in client.get(page).get_data(as_text=True)

    client.post(f"{page}/payments", data=payment_form(client, page, amount=owed, method="cash", reference="R-77"))
    shown = client.get(page).get_data(as_text=True)
    assert f"Payment of {owed} USD recorded." in shown
    assert "R-77" in shown and "(owed)" not in shown
    with seeded.sessions() as s:
        states = s.scalars(select(Service.state).where(Service.customer_id == seeded.customer_id)).all()
    assert set(states) == {ServiceState.ACTIVE}

    invoice_link = shown.split('href="/invoices/')[1].split('"')[0]
    pdf = client.get(f"/invoices/{invoice_link}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert client.get("/invoices/999.pdf").status_code == 404


def test_service_page_shows_traffic_this_period_against_the_quota(admin: FlaskClient, seeded: Seeded) -> None:
    with seeded.sessions.begin() as s:
        plans.add_plan(
            s, "test", seeded.settings, name="lite-1", download="5M", upload="1M", price="10.00",
            quota="1GB", fair_use_download="1M", fair_use_upload="512k",
        )  # fmt: skip
        services.set_service_plan(s, "test", seeded.static_service_id, "lite-1")
        now = utcnow()
        for minutes_ago, total, delta in ((30, 400_000_000, None), (10, 1_300_000_000, 900_000_000)):
            s.add(
                UsageSample(
                    service_id=seeded.static_service_id,
                    taken_at=now - timedelta(minutes=minutes_ago),
                    bytes_in=total,
                    bytes_out=0,
                    delta_in=delta,
                    delta_out=None if delta is None else 300_000_000,
                )
            )
    page = admin.get(f"/services/{seeded.static_service_id}").get_data(as_text=True)
    assert "Quota used up: 1.2 GB of 1GB quota used" in page
    assert "past the quota traffic is slowed to the fair-use rate" in page
    other = admin.get(f"/services/{seeded.service_id}").get_data(as_text=True)
    assert "0 B used this period" in other and "no quota" in other
