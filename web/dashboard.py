"""The dashboard pages: overview, customers, services (with the diagnosis), routers.

Each view parses the request, asks :mod:`daemon.services` (or the billing and diagnosis modules) for records,
and renders them; none of them queries the database itself.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from daemon.billing.payments import receive_payment
from daemon.billing.pdf import render_invoice_pdf
from daemon.db.errors import fault_of
from daemon.db.models import UserRole
from daemon.services import Invalid, NotFound, ServiceError, customers, invoices, ledger, ops, payments, plans, routers
from daemon.services import services as subs
from daemon.services.diagnosis import diagnose_service
from daemon.services.state import set_service_state
from policies.desired import ServiceState
from web.auth import check_csrf, current_user, login_required
from web.context import db, settings, today

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__)

T = TypeVar("T")

PAGE_SIZE = 50

#: What support staff may do to a service from its page (terminating is an admin's job, from the CLI).
STAFF_ACTIONS = ("throttle", "suspend", "resume")

#: How a payment taken at the counter may be made.
PAYMENT_METHODS = ("cash", "bank", "card")


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
        # One-time token of the payment form: a repeated submission records the payment once.
        submission=secrets.token_urlsafe(24),
        payment_methods=PAYMENT_METHODS,
    )


@bp.post("/customers/<int:customer_id>/payments")
@login_required(UserRole.SUPPORT)
def customer_payment(customer_id: int) -> Response:
    """Take a payment at the counter: it pays the oldest invoices and releases the customer's services now.

    The form's one-time ``submission`` token makes a double click, a second tab or a retried request record the
    payment once: a repeat answers with the payment already recorded. Every refusal (a malformed, huge or
    negative amount, a wrong currency or method, a customer deleted meanwhile, a database error) is a message
    on the form, and nothing is written; a read-only or unreachable database is the application's 503 page.
    """
    check_csrf()
    user = current_user()
    assert user is not None
    back = redirect(url_for("dashboard.customer", customer_id=customer_id))
    problem = _payment_form_problem()
    if problem:
        flash(f"Payment not recorded: {problem}", "error")
        return back
    try:
        received = receive_payment(
            db(),
            f"web:{user.username}",
            settings(),
            idempotency_key=request.form["submission"],
            customer_id=customer_id,
            amount=request.form.get("amount", "").strip(),
            method=request.form.get("method", "cash"),
            reference=request.form.get("reference", "").strip()[:1000] or None,
        )
        db().commit()
    except NotFound:
        db().rollback()
        flash(f"Payment not recorded: customer {customer_id} no longer exists.", "error")
        return redirect(url_for("dashboard.customers"))
    except (ServiceError, ValueError) as exc:
        db().rollback()
        flash(f"Payment not recorded: {exc}", "error")
    except SQLAlchemyError as exc:
        db().rollback()
        if fault_of(exc) is not None:
            raise  # read-only or unreachable: the application's answer (web.errors), a 503 saying why
        log.exception("payment form for customer %s: the database refused the write", customer_id)
        flash("Payment not recorded: the database could not store it; nothing was written. Try again.", "error")
    else:
        payment = received.payment
        if received.created:
            flash(f"Payment of {payment.amount} recorded.", "ok")
        else:
            flash(f"Already recorded: payment #{payment.id} of {payment.amount}.", "ok")
    return back


def _payment_form_problem() -> str | None:
    """What is wrong with the payment form's fixed fields, if anything."""
    form = request.form
    if not form.get("submission"):
        return "the form is out of date; reload the page and enter the payment again."
    if form.get("method", "cash") not in PAYMENT_METHODS:
        return f"unknown payment method {form.get('method', '')[:20]!r}: expected one of {', '.join(PAYMENT_METHODS)}."
    billed_in = settings().billing.currency.code
    given = form.get("currency", billed_in).strip().upper()
    if given != billed_in:
        return f"the amount is in {given[:10]!r} but this installation bills in {billed_in}."
    return None


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
