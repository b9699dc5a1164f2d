"""REST API, ``/api/v1``: bearer-token authentication, JSON in and out.

Tokens are created with ``edgebill token create USER NAME``; only their SHA-256 is stored. Every response is
JSON, errors included (:mod:`web.guards`): ``{"error": "not_found", "message": "no service 7"}``. Amounts are
decimal strings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, abort, g, jsonify, request
from flask.typing import ResponseReturnValue

from daemon.services import NotFound, customers, ledger, plans, routers, services, users
from daemon.services.diagnosis import diagnose_service
from policies.desired import ServiceState
from web.context import db, settings, today
from web.guards import query_id

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


def _or_404(what: str, ident: int, fetch: Callable[[], T]) -> T:
    """``fetch()``, or a 404 answer naming the missing ``what`` if it raises :class:`NotFound`."""
    try:
        return fetch()
    except NotFound:
        abort(404, description=f"no {what} {ident}")


@bp.get("/customers")
def list_customers() -> ResponseReturnValue:
    return jsonify([c.to_json() for c in customers.list_customers(db())])


@bp.get("/customers/<int:customer_id>")
def get_customer(customer_id: int) -> ResponseReturnValue:
    c = _or_404("customer", customer_id, lambda: customers.get_customer(db(), customer_id))
    body = c.to_json()
    body["balance"] = ledger.balance(db(), c.id, settings().billing.currency).to_json()
    return jsonify(body)


@bp.get("/plans")
def list_plans() -> ResponseReturnValue:
    return jsonify([p.to_json() for p in plans.list_plans(db())])


@bp.get("/services")
def list_services() -> ResponseReturnValue:
    state = request.args.get("state")
    if state is not None and state not in {s.value for s in ServiceState}:
        abort(400, description=f"unknown state {state[:40]!r}")
    found = services.list_services(db(), state=state, customer_id=query_id("customer_id"))
    return jsonify([s.to_json() for s in found])


@bp.get("/services/<int:service_id>")
def get_service(service_id: int) -> ResponseReturnValue:
    s = _or_404("service", service_id, lambda: services.get_service(db(), service_id))
    d = diagnose_service(db(), s.id, settings().billing, today=today())
    body = s.to_json()
    body["diagnosis"] = {
        "headline": d.headline,
        "findings": [{"severity": f.severity, "title": f.title, "detail": f.detail} for f in d.findings],
        "pending_ops": d.pending_ops,
        "conflict": d.conflict,
    }
    return jsonify(body)


@bp.get("/routers")
def list_routers() -> ResponseReturnValue:
    return jsonify([r.to_json() for r in routers.list_routers(db(), include_retired=True)])
