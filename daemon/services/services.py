"""Subscriber services: one connection (PPPoE or static IPv4) of one customer, on one router and plan.

Every change is written to the audit log and queues a ``reconcile`` of the service's router in the same
transaction (see :mod:`daemon.services.ops`), so the router is brought in line by the reconcile loop.
PPPoE passwords are stored encrypted (:class:`daemon.security.SecretBox`) and never returned in records.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from daemon.config import ConfigError, Settings
from daemon.db.models import OverQuota, Plan, Router, Service, utcnow
from daemon.security import SecretBox
from daemon.services import _validate as check
from daemon.services import audit, customers, ops, plans, routers
from daemon.services._db import insert_unique
from daemon.services.errors import Conflict, Invalid, NotFound
from policies.desired import ConnectionType, ServiceState
from policies.naming import Carrier
from policies.rates import format_rate

__all__ = [
    "ServiceRecord",
    "add_service",
    "carrier",
    "count_by_router",
    "count_by_state",
    "customers_started_by",
    "get_service",
    "list_services",
    "live_on_router",
    "live_services",
    "load_service",
    "needing_attention",
    "pppoe_password",
    "router_has_pppoe",
    "rows_by_id",
    "secret_box",
    "services_by_router",
    "set_promise",
    "set_service_plan",
    "started_by",
    "watched_by_billing",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class ServiceRecord:
    id: int
    customer_id: int
    customer_name: str
    plan: str
    router: str
    connection_type: str
    pppoe_login: str | None
    ipv4: str | None
    state: str
    state_reason: str | None
    state_since: datetime
    started_on: date
    promise_until: date | None
    terminated_at: datetime | None
    download_bps: int
    upload_bps: int
    created_at: datetime

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "plan": self.plan,
            "router": self.router,
            "connection_type": self.connection_type,
            "pppoe_login": self.pppoe_login,
            "ipv4": self.ipv4,
            "state": self.state,
            "state_reason": self.state_reason,
            "state_since": self.state_since.isoformat(),
            "started_on": self.started_on.isoformat(),
            "promise_until": self.promise_until.isoformat() if self.promise_until else None,
            "terminated_at": self.terminated_at.isoformat() if self.terminated_at else None,
            "download_bps": self.download_bps,
            "upload_bps": self.upload_bps,
            "download": format_rate(self.download_bps),
            "upload": format_rate(self.upload_bps),
            "created_at": self.created_at.isoformat(),
        }


def record_of(row: Service) -> ServiceRecord:
    return ServiceRecord(
        id=row.id,
        customer_id=row.customer_id,
        customer_name=row.customer.name,
        plan=row.plan.name,
        router=row.router.name,
        connection_type=row.connection_type.value,
        pppoe_login=row.pppoe_login,
        ipv4=row.ipv4,
        state=row.state.value,
        state_reason=row.state_reason,
        state_since=row.state_since,
        started_on=row.started_on,
        promise_until=row.promise_until,
        terminated_at=row.terminated_at,
        download_bps=row.plan.download_bps,
        upload_bps=row.plan.upload_bps,
        created_at=row.created_at,
    )


def load_service(session: Session, service_id: int) -> Service:
    """The service row, or :class:`NotFound`."""
    row = session.get(Service, service_id)
    if row is None:
        raise NotFound(f"service {service_id} not found")
    return row


def started_by(session: Session, customer_ids: Sequence[int], day: date) -> list[Service]:
    """The rows of these customers' services started on or before ``day``, by customer then id."""
    query = (
        select(Service)
        .where(Service.customer_id.in_(customer_ids), Service.started_on <= day)
        .order_by(Service.customer_id, Service.id)
    )
    return list(session.scalars(query))


def customers_started_by(session: Session, day: date) -> list[int]:
    """The ids of the customers with a service started on or before ``day``, in order."""
    query = select(Service.customer_id).where(Service.started_on <= day).distinct().order_by(Service.customer_id)
    return list(session.scalars(query))


def live_services(session: Session, customer_id: int) -> list[Service]:
    """The rows of the customer's services that are not terminated, by id."""
    query = (
        select(Service)
        .where(Service.customer_id == customer_id, Service.state != ServiceState.TERMINATED)
        .order_by(Service.id)
    )
    return list(session.scalars(query))


def watched_by_billing(
    session: Session, customer_ids: Sequence[int], reason_prefixes: Sequence[str]
) -> dict[int, bool]:
    """Which of these customers have a service that is not terminated and is in a state whose reason starts with
    one of ``reason_prefixes``, on a prepaid plan, or on a plan that throttles over its quota; for each, whether
    one of those services is prepaid."""
    owned = or_(*(Service.state_reason.startswith(prefix) for prefix in reason_prefixes))
    quota_throttle = and_(Plan.quota_bytes.is_not(None), Plan.over_quota == OverQuota.THROTTLE)
    query = (
        select(Service.customer_id, Plan.prepaid)
        .join(Plan, Plan.id == Service.plan_id)
        .where(
            Service.customer_id.in_(customer_ids),
            Service.state != ServiceState.TERMINATED,
            or_(owned, Plan.prepaid.is_(True), quota_throttle),
        )
    )
    found: dict[int, bool] = {}
    for customer_id, is_prepaid in session.execute(query):
        found[customer_id] = found.get(customer_id, False) or bool(is_prepaid)
    return found


def live_on_router(session: Session, router_id: int) -> Sequence[Service]:
    """The rows of the services on ``router_id`` that are not terminated, in id order (what the router carries)."""
    return session.scalars(
        select(Service)
        .where(Service.router_id == router_id, Service.state != ServiceState.TERMINATED)
        .order_by(Service.id)
    ).all()


def router_has_pppoe(session: Session, router_id: int) -> bool:
    """Whether a service on ``router_id`` that is not terminated is PPPoE (its password must be decrypted)."""
    found = session.scalars(
        select(Service.id).where(
            Service.router_id == router_id,
            Service.connection_type == ConnectionType.PPPOE,
            Service.state != ServiceState.TERMINATED,
        )
    ).first()
    return found is not None


def rows_by_id(session: Session, service_ids: Collection[int]) -> Sequence[Service]:
    """The rows of ``service_ids`` that exist, whatever their state, in id order."""
    return session.scalars(select(Service).where(Service.id.in_(service_ids)).order_by(Service.id)).all()


def services_by_router(session: Session, services: Collection[int]) -> dict[str, tuple[int, ...]]:
    """The routers carrying ``services``, each with its services in id order; NotFound names a missing one."""
    rows = session.execute(
        select(Service.id, Router.name).join(Router, Router.id == Service.router_id).where(Service.id.in_(services))
    ).all()
    found = {service_id: router for service_id, router in rows}
    for service_id in sorted(services):
        if service_id not in found:
            raise NotFound(f"service {service_id} not found")
    out: dict[str, list[int]] = {}
    for service_id in sorted(found):
        out.setdefault(found[service_id], []).append(service_id)
    return {router: tuple(ids) for router, ids in out.items()}


def _check_unique(session: Session, router: Router, *, login: str | None, ipv4: str | None) -> None:
    if login is not None:
        other = session.scalars(
            select(Service.id).where(Service.router_id == router.id, Service.pppoe_login == login)
        ).first()
        if other is not None:
            raise Conflict(f"PPPoE login {login!r} is already used by service {other} on router {router.name!r}")
    if ipv4 is not None:
        other = session.scalars(select(Service.id).where(Service.router_id == router.id, Service.ipv4 == ipv4)).first()
        if other is not None:
            raise Conflict(f"IPv4 address {ipv4} is already used by service {other} on router {router.name!r}")


def _addresses_on(session: Session, router_id: int) -> list[str]:
    """The addresses of the services ``router_id`` carries (not terminated)."""
    query = select(Service.ipv4).where(
        Service.router_id == router_id, Service.state != ServiceState.TERMINATED, Service.ipv4.is_not(None)
    )
    return [address for address in session.scalars(query) if address is not None]


def secret_box(source: Settings | SecretBox) -> SecretBox:
    """The box that encrypts PPPoE passwords: given, or made from ``settings.security`` keys."""
    if isinstance(source, SecretBox):
        return source
    return SecretBox(source.security.fernet_keys())


def carrier(settings: Settings | SecretBox, router: Router) -> Carrier:
    """What the entry checks know of ``router``: its kind, and its encoding and subnets when configured."""
    if isinstance(settings, Settings):
        try:
            conf = settings.router(router.name)
        except ConfigError:
            conf = None
        if conf is not None:
            return Carrier(kind=conf.kind, encoding=conf.encoding, subnets=tuple(conf.subnets))
    return Carrier(kind=router.kind.value)


def add_service(
    session: Session,
    actor: str,
    settings: Settings | SecretBox,
    *,
    customer_id: int,
    plan_name: str,
    router_name: str,
    started_on: date | None = None,
    pppoe_login: str | None = None,
    pppoe_password: str | None = None,
    ipv4: str | None = None,
) -> ServiceRecord:
    """Create an active service and queue its router's reconcile.

    A PPPoE service needs ``pppoe_login`` and ``pppoe_password`` (``ipv4`` optionally pins its address); a
    static service needs ``ipv4`` only. Logins and addresses are unique per router. The plan must be active
    and the router configured (not retired). ``started_on`` defaults to today in the billing time zone.
    The password is encrypted with the keys of ``settings.security`` (or the given box).
    """
    if pppoe_login is None and pppoe_password is not None:
        raise Invalid("a PPPoE password was given without a PPPoE login")
    if pppoe_login is None and ipv4 is None:
        raise Invalid("a service needs a PPPoE login and password, or a static IPv4 address")
    if pppoe_login is not None and pppoe_password is None:
        raise Invalid(f"PPPoE login {pppoe_login!r} needs a password")
    login = check.pppoe_login(pppoe_login) if pppoe_login is not None else None
    secret = check.pppoe_password(pppoe_password) if pppoe_password is not None else None
    address = check.ipv4(ipv4) if ipv4 is not None else None
    customer = customers.load(session, customer_id)
    plan_row = plans.load_plan(session, plan_name)
    if not plan_row.active:
        raise Conflict(f"plan {plan_name!r} is no longer offered (inactive)")
    router_row = routers.load_router(session, router_name, allow_retired=False)
    if started_on is None:
        if isinstance(settings, SecretBox):
            raise Invalid("a start date is needed")
        started_on = datetime.now(settings.billing.timezone).date()
    box = secret_box(settings)
    where = carrier(settings, router_row)
    others = _addresses_on(session, router_row.id) if where.by_address else []
    check.carried(router_row.name, where, login=login, password=secret, address=address, others=others)
    _check_unique(session, router_row, login=login, ipv4=address)
    row = Service(
        customer=customer,
        plan=plan_row,
        router=router_row,
        connection_type=ConnectionType.PPPOE if login is not None else ConnectionType.STATIC,
        pppoe_login=login,
        pppoe_password=box.encrypt(secret) if secret is not None else None,
        ipv4=address,
        state=ServiceState.ACTIVE,
        state_reason="new service",
        state_since=utcnow(),
        started_on=started_on,
    )
    insert_unique(session, row, f"PPPoE login or IPv4 address was just taken on router {router_row.name!r}")
    result = record_of(row)
    audit.record(session, actor, "service.add", "service", None, result.to_json())
    ops.enqueue_reconcile(session, router_row.id, reason="service.add", service_id=row.id)
    log.info("service %s added on router %s by %s", row.id, router_row.name, actor)
    return result


def get_service(session: Session, service_id: int) -> ServiceRecord:
    return record_of(load_service(session, service_id))


def list_services(
    session: Session,
    *,
    customer_id: int | None = None,
    state: str | None = None,
    router: str | None = None,
    plan: str | None = None,
    limit: int | None = None,
) -> list[ServiceRecord]:
    """Services by ``id``, optionally filtered; the first ``limit`` of them if given."""
    query = _named(select(Service)).order_by(Service.id)
    if customer_id is not None:
        query = query.where(Service.customer_id == customer_id)
    if state is not None:
        try:
            query = query.where(Service.state == ServiceState(state))
        except ValueError:
            choices = ", ".join(s.value for s in ServiceState)
            raise Invalid(f"invalid service state {state!r}: expected one of {choices}") from None
    if router is not None:
        query = query.where(Service.router_id == routers.load_router(session, router).id)
    if plan is not None:
        query = query.where(Service.plan_id == plans.load_plan(session, plan).id)
    if limit is not None:
        query = query.limit(max(1, limit))
    return [record_of(row) for row in session.scalars(query)]


def _named(query: Select[Service]) -> Select[Service]:
    """``query`` loading the customer, plan and router its records name: one query per kind, not per service."""
    return query.options(selectinload(Service.customer), selectinload(Service.plan), selectinload(Service.router))


def needing_attention(session: Session, *, limit: int) -> list[ServiceRecord]:
    """The throttled and suspended services, most recently changed first (at most ``limit``)."""
    query = _named(select(Service)).where(Service.state.in_([ServiceState.THROTTLED, ServiceState.SUSPENDED]))
    query = query.order_by(Service.state_since.desc()).limit(max(1, limit))
    return [record_of(row) for row in session.scalars(query)]


def count_by_state(session: Session) -> dict[str, int]:
    """How many services are in each state but ``terminated`` (every such state named, zero included)."""
    query = select(Service.state, func.count()).where(Service.state != ServiceState.TERMINATED).group_by(Service.state)
    found = {state: count for state, count in session.execute(query)}
    return {state.value: found.get(state, 0) for state in ServiceState if state is not ServiceState.TERMINATED}


def count_by_router(session: Session) -> dict[int, int]:
    """How many services that are not terminated each router id carries (routers with none left out)."""
    query = (
        select(Service.router_id, func.count())
        .where(Service.state != ServiceState.TERMINATED)
        .group_by(Service.router_id)
    )
    return {router_id: count for router_id, count in session.execute(query)}


def set_service_plan(session: Session, actor: str, service_id: int, plan_name: str) -> ServiceRecord:
    """Move a service to another active plan and queue its router's reconcile; the same plan changes nothing."""
    row = load_service(session, service_id)
    if row.state is ServiceState.TERMINATED:
        raise Conflict(f"service {service_id} is terminated")
    new_plan = plans.load_plan(session, plan_name)
    if new_plan.id == row.plan_id:
        return record_of(row)
    if not new_plan.active:
        raise Conflict(f"plan {plan_name!r} is no longer offered (inactive)")
    before = record_of(row)
    row.plan = new_plan
    session.flush()
    after = record_of(row)
    audit.record(session, actor, "service.set_plan", "service", before.to_json(), after.to_json())
    ops.enqueue_reconcile(session, row.router_id, reason="service.set_plan", service_id=row.id)
    log.info("service %s moved from plan %s to %s by %s", row.id, before.plan, plan_name, actor)
    return after


def set_promise(session: Session, actor: str, service_id: int, until: date) -> ServiceRecord:
    """Record the customer's promise to pay by ``until``: dunning holds its enforcement on the service until then."""
    row = load_service(session, service_id)
    before = record_of(row).to_json()
    row.promise_until = until
    session.flush()
    after = record_of(row)
    audit.record(session, actor, "service.promise", "service", before, after.to_json())
    return after


def pppoe_password(session: Session, settings: Settings | SecretBox, service_id: int) -> str | None:
    """The decrypted PPPoE password of a service, for pushing to its router; ``None`` for static services.

    The value is a secret: never log it or put it in a record.
    """
    row = load_service(session, service_id)
    if row.pppoe_password is None:
        return None
    return secret_box(settings).decrypt(row.pppoe_password)
