"""REST API, ``/api/v1``: bearer-token authentication, JSON in and out.

Tokens are created with ``edgebill token create USER NAME``; only their SHA-256 is stored. Every response is
JSON, errors included: ``{"error": "not_found", "message": "no service 7"}``. Amounts are decimal strings.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from flask import Blueprint, abort, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from daemon.db.models import Customer, Plan, Router, Service
from daemon.services import customers, ledger, plans, routers, services, users
from daemon.services.diagnosis import diagnose_service
from policies.desired import ServiceState
from web.context import db, settings
from web.dashboard import today

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

T = TypeVar("T")


@bp.before_request
def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        abort(401, description="send an API token as 'Authorization: Bearer TOKEN'")
    user = users.verify_token(db(), token.strip())
    if user is None:
        log.warning("API request with an unknown or revoked token from %s", request.remote_addr)
        abort(401, description="unknown or revoked API token")
    db().commit()
    g.api_user = user


@bp.errorhandler(HTTPException)
def _error(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    name = (exc.name or "error").lower().replace(" ", "_")
    return jsonify(error=name, message=exc.description), code


def _get_or_404(model: type[T], ident: int) -> T:
    obj = db().get(model, ident)
    if obj is None:
        abort(404, description=f"no {model.__name__.lower()} {ident}")
    return obj


@bp.get("/customers")
def list_customers() -> ResponseReturnValue:
    rows = db().scalars(select(Customer).order_by(Customer.id)).all()
    return jsonify([customers.record_of(c).to_json() for c in rows])


@bp.get("/customers/<int:customer_id>")
def get_customer(customer_id: int) -> ResponseReturnValue:
    c = _get_or_404(Customer, customer_id)
    body = customers.record_of(c).to_json()
    body["balance"] = ledger.balance(db(), c.id, settings().billing.currency).to_json()
    return jsonify(body)


@bp.get("/plans")
def list_plans() -> ResponseReturnValue:
    return jsonify([plans.record_of(p).to_json() for p in db().scalars(select(Plan).order_by(Plan.name)).all()])


@bp.get("/services")
def list_services() -> ResponseReturnValue:
    stmt = select(Service).order_by(Service.id)
    state = request.args.get("state")
    if state is not None:
        if state not in {s.value for s in ServiceState}:
            abort(400, description=f"unknown state {state!r}")
        stmt = stmt.where(Service.state == ServiceState(state))
    customer = request.args.get("customer_id")
    if customer is not None:
        if not customer.isdigit():
            abort(400, description="customer_id must be a number")
        stmt = stmt.where(Service.customer_id == int(customer))
    return jsonify([services.record_of(s).to_json() for s in db().scalars(stmt).all()])


@bp.get("/services/<int:service_id>")
def get_service(service_id: int) -> ResponseReturnValue:
    s = _get_or_404(Service, service_id)
    d = diagnose_service(db(), s.id, settings().billing, today=today())
    body = services.record_of(s).to_json()
    body["diagnosis"] = {
        "headline": d.headline,
        "findings": [{"severity": f.severity, "title": f.title, "detail": f.detail} for f in d.findings],
        "pending_ops": d.pending_ops,
    }
    return jsonify(body)


@bp.get("/routers")
def list_routers() -> ResponseReturnValue:
    return jsonify([routers.record_of(r).to_json() for r in db().scalars(select(Router).order_by(Router.name)).all()])
