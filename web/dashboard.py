"""The dashboard pages: overview, customers, services (with the diagnosis), routers."""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response

from daemon.billing.payments import receive_payment
from daemon.billing.pdf import render_invoice_pdf
from daemon.db.models import (
    Customer,
    Invoice,
    Payment,
    Plan,
    Router,
    RouterOp,
    RouterOpStatus,
    Service,
    UserRole,
    utcnow,
)
from daemon.services import NotFound, ServiceError, ledger
from daemon.services.diagnosis import diagnose_service
from daemon.services.state import set_service_state
from policies.desired import ServiceState
from policies.money import Money, currency
from policies.rates import format_rate
from web.auth import check_csrf, current_user, login_required
from web.context import db, settings

bp = Blueprint("dashboard", __name__)

PAGE_SIZE = 50

#: What support staff may do to a service from its page (terminating is an admin's job, from the CLI).
STAFF_ACTIONS = ("throttle", "suspend", "resume")


def money_of(minor: int, code: str) -> Money:
    """A stored amount (minor units and currency code) as :class:`Money`, for templates."""
    return Money(minor, currency(code))


def money_filter(value: Money | None) -> str:
    return "—" if value is None else f"{value.to_json()} {value.currency.code}"


def rate_filter(bps: int | None) -> str:
    return "—" if not bps else format_rate(bps)


def when_filter(moment: datetime | date | None) -> str:
    """A timestamp in the billing time zone, or a plain date."""
    if moment is None:
        return "never"
    if isinstance(moment, datetime):
        return moment.astimezone(settings().billing.timezone).strftime("%Y-%m-%d %H:%M %Z")
    return moment.isoformat()


def today() -> date:
    return utcnow().astimezone(settings().billing.timezone).date()


@bp.route("/")
@login_required()
def overview() -> str:
    session = db()
    by_state = dict(
        session.execute(
            select(Service.state, func.count()).where(Service.state != ServiceState.TERMINATED).group_by(Service.state)
        ).all()
    )
    routers = session.scalars(select(Router).where(Router.retired_at.is_(None)).order_by(Router.name)).all()
    pending = dict(
        session.execute(
            select(RouterOp.router_id, func.count())
            .where(RouterOp.status == RouterOpStatus.PENDING)
            .group_by(RouterOp.router_id)
        ).all()
    )
    attention = session.scalars(
        select(Service)
        .where(Service.state.in_([ServiceState.THROTTLED, ServiceState.SUSPENDED]))
        .order_by(Service.state_since.desc())
        .limit(20)
    ).all()
    return render_template(
        "overview.html",
        counts={state.value: by_state.get(state, 0) for state in ServiceState if state is not ServiceState.TERMINATED},
        customers=session.scalar(select(func.count()).select_from(Customer)),
        routers=routers,
        pending=pending,
        attention=attention,
    )


@bp.route("/customers")
@login_required()
def customers() -> str:
    q = request.args.get("q", "").strip()
    stmt = select(Customer).order_by(Customer.name)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Customer.name.ilike(like), Customer.email.ilike(like), Customer.phone.ilike(like)))
        if q.isdigit():
            stmt = select(Customer).where(or_(Customer.id == int(q), Customer.name.ilike(like))).order_by(Customer.name)
    rows = db().scalars(stmt.limit(PAGE_SIZE)).all()
    return render_template("customers.html", customers=rows, q=q)


@bp.route("/customers/<int:customer_id>")
@login_required()
def customer(customer_id: int) -> str:
    session = db()
    cust = session.get(Customer, customer_id)
    if cust is None:
        abort(404)
    services = session.scalars(select(Service).where(Service.customer_id == cust.id).order_by(Service.id)).all()
    invoices = session.scalars(
        select(Invoice).where(Invoice.customer_id == cust.id).order_by(Invoice.issued_on.desc(), Invoice.id.desc())
    ).all()
    payments = session.scalars(
        select(Payment).where(Payment.customer_id == cust.id).order_by(Payment.received_at.desc()).limit(20)
    ).all()
    return render_template(
        "customer.html",
        customer=cust,
        services=services,
        invoices=invoices,
        payments=payments,
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
    if db().get(Invoice, invoice_id) is None:
        abort(404)
    pdf = render_invoice_pdf(db(), settings(), invoice_id)
    return Response(
        pdf, mimetype="application/pdf", headers={"Content-Disposition": f"inline; filename=invoice-{invoice_id}.pdf"}
    )


@bp.route("/services")
@login_required()
def services() -> str:
    state = request.args.get("state", "")
    stmt = select(Service).order_by(Service.id)
    if state in {s.value for s in ServiceState}:
        stmt = stmt.where(Service.state == ServiceState(state))
    rows = db().scalars(stmt.limit(PAGE_SIZE)).all()
    return render_template("services.html", services=rows, state=state, states=[s.value for s in ServiceState])


@bp.route("/services/<int:service_id>")
@login_required()
def service(service_id: int) -> str:
    session = db()
    svc = session.get(Service, service_id)
    if svc is None:
        abort(404)
    diagnosis = diagnose_service(session, svc.id, settings().billing, today=today())
    ops = session.scalars(
        select(RouterOp).where(RouterOp.service_id == svc.id).order_by(RouterOp.id.desc()).limit(20)
    ).all()
    return render_template("service.html", service=svc, diagnosis=diagnosis, ops=ops, actions=STAFF_ACTIONS)


@bp.post("/services/<int:service_id>/state")
@login_required(UserRole.SUPPORT)
def service_state(service_id: int) -> Response:
    """Throttle, suspend or resume a service by hand; the router follows within seconds."""
    check_csrf()
    action = request.form.get("action", "")
    if action not in STAFF_ACTIONS:
        abort(400, description=f"unknown action {action!r}")
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


@bp.route("/plans")
@login_required()
def plans() -> str:
    rows = db().scalars(select(Plan).order_by(Plan.name)).all()
    return render_template("plans.html", plans=rows)


@bp.route("/routers")
@login_required()
def routers() -> str:
    session = db()
    rows = session.scalars(select(Router).order_by(Router.name)).all()
    counts = dict(
        session.execute(
            select(Service.router_id, func.count())
            .where(Service.state != ServiceState.TERMINATED)
            .group_by(Service.router_id)
        ).all()
    )
    return render_template("routers.html", routers=rows, counts=counts)
