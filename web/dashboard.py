"""The dashboard pages: overview, customers, services (with the diagnosis), routers.

Each view parses the request, asks :mod:`daemon.services` (or the billing and diagnosis modules) for records,
and renders them; none of them queries the database itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from daemon.billing.payments import receive_payment
from daemon.billing.pdf import render_invoice_pdf
from daemon.db.models import UserRole
from daemon.services import Invalid, NotFound, ServiceError, customers, invoices, ledger, ops, payments, plans, routers
from daemon.services import services as subs
from daemon.services.diagnosis import diagnose_service
from daemon.services.state import set_service_state
from policies.desired import ServiceState
from web.auth import check_csrf, current_user, login_required
from web.context import db, settings, today

bp = Blueprint("dashboard", __name__)

T = TypeVar("T")

PAGE_SIZE = 50

#: What support staff may do to a service from its page (terminating is an admin's job, from the CLI).
STAFF_ACTIONS = ("throttle", "suspend", "resume")


def _or_404(fetch: Callable[[], T]) -> T:
    """``fetch()``, or the 404 page if it raises :class:`NotFound`."""
    try:
        return fetch()
    except NotFound:
        abort(404)


@bp.route("/")
@login_required()
def overview() -> str:
    session = db()
    return render_template(
        "overview.html",
        counts=subs.count_by_state(session),
        customers=customers.count_customers(session),
        routers=routers.list_routers(session),
        pending=ops.pending_by_router(session),
        attention=subs.needing_attention(session, limit=20),
    )


@bp.route("/customers", endpoint="customers")
@login_required()
def customers_page() -> str:
    q = request.args.get("q", "").strip()
    try:
        rows = customers.search_customers(db(), q, limit=PAGE_SIZE)
    except Invalid as exc:
        abort(400, description=str(exc))
    return render_template("customers.html", customers=rows, q=q)


@bp.route("/customers/<int:customer_id>")
@login_required()
def customer(customer_id: int) -> str:
    session = db()
    cust = _or_404(lambda: customers.get_customer(session, customer_id))
    return render_template(
        "customer.html",
        customer=cust,
        services=subs.list_services(session, customer_id=cust.id),
        invoices=invoices.list_invoices(session, customer_id=cust.id, by_date=True),
        payments=payments.list_payments(session, customer_id=cust.id, by_date=True, limit=20),
        balance=ledger.balance(session, cust.id, settings().billing.currency),
    )


@bp.post("/customers/<int:customer_id>/payments")
@login_required(UserRole.SUPPORT)
def customer_payment(customer_id: int) -> Response:
    """Take a payment at the counter: it pays the oldest invoices and releases the customer's services now."""
    check_csrf()
    user = current_user()
    assert user is not None
    method = request.form.get("method", "cash")
    if method not in ("cash", "bank", "card"):
        abort(400, description=f"unknown payment method {method!r}")
    try:
        received = receive_payment(
            db(),
            f"web:{user.username}",
            settings(),
            customer_id=customer_id,
            amount=request.form.get("amount", "").strip(),
            method=method,
            reference=request.form.get("reference", "").strip() or None,
        )
    except NotFound:
        db().rollback()
        abort(404)
    except (ServiceError, ValueError) as exc:
        db().rollback()
        flash(f"Payment not recorded: {exc}", "error")
    else:
        db().commit()
        flash(f"Payment of {received.payment.amount} recorded.", "ok")
    return redirect(url_for("dashboard.customer", customer_id=customer_id))


@bp.route("/invoices/<int:invoice_id>.pdf")
@login_required()
def invoice_pdf(invoice_id: int) -> Response:
    _or_404(lambda: invoices.get_invoice(db(), invoice_id))
    pdf = render_invoice_pdf(db(), settings(), invoice_id)
    return Response(
        pdf, mimetype="application/pdf", headers={"Content-Disposition": f"inline; filename=invoice-{invoice_id}.pdf"}
    )


@bp.route("/services", endpoint="services")
@login_required()
def services_page() -> str:
    state = request.args.get("state", "")
    states = [s.value for s in ServiceState]
    rows = subs.list_services(db(), state=state if state in states else None, limit=PAGE_SIZE)
    return render_template("services.html", services=rows, state=state, states=states)


@bp.route("/services/<int:service_id>")
@login_required()
def service(service_id: int) -> str:
    session = db()
    svc = _or_404(lambda: subs.get_service(session, service_id))
    return render_template(
        "service.html",
        service=svc,
        router=routers.get_router(session, svc.router),
        diagnosis=diagnose_service(session, svc.id, settings().billing, today=today()),
        ops=ops.list_ops(session, service_id=svc.id, newest_first=True, limit=20),
        actions=STAFF_ACTIONS,
    )


@bp.post("/services/<int:service_id>/state")
@login_required(UserRole.SUPPORT)
def service_state(service_id: int) -> Response:
    """Throttle, suspend or resume a service by hand; the router follows within seconds."""
    check_csrf()
    action = request.form.get("action", "")
    if action not in STAFF_ACTIONS:
        abort(400, description=f"unknown action {action[:40]!r}")
    user = current_user()
    assert user is not None
    try:
        change = set_service_state(db(), f"web:{user.username}", service_id, action, request.form.get("reason"))
    except NotFound:
        db().rollback()
        abort(404)
    except ServiceError as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        db().commit()
        if change.changed:
            flash(f"Service {service_id} is now {change.after}; the router follows within seconds.", "ok")
    return redirect(url_for("dashboard.service", service_id=service_id))


@bp.route("/plans", endpoint="plans")
@login_required()
def plans_page() -> str:
    return render_template("plans.html", plans=plans.list_plans(db()))


@bp.route("/routers", endpoint="routers")
@login_required()
def routers_page() -> str:
    session = db()
    return render_template(
        "routers.html",
        routers=routers.list_routers(session, include_retired=True),
        counts=subs.count_by_router(session),
        conflicts=ops.conflicts_by_router(session),
    )
