"""The durable queue of router operations.

A change to a service (added, new plan, suspended...) enqueues a ``reconcile`` operation for its router in the
same transaction as the change, so a crash can never lose it. The reconcile loop takes due operations in
``id`` order, carries them out and marks each done, or failed with a retry time.

On PostgreSQL, enqueueing also notifies :data:`NOTIFY_CHANNEL` in that transaction, so the daemon's watcher
(:mod:`daemon.scheduler.wakeup`) hears of the work when it commits, and never when it rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from daemon.db.models import Router, RouterOp, RouterOpStatus, utcnow
from daemon.services.errors import Conflict, Invalid, NotFound

__all__ = [
    "CONFLICT_KEY",
    "DISCONNECT",
    "NOTIFY_CHANNEL",
    "RECONCILE",
    "RouterOpRecord",
    "attempts",
    "conflicts_by_router",
    "conflicts_of_service",
    "due_ops",
    "due_services",
    "enqueue",
    "enqueue_reconcile",
    "list_ops",
    "mark_conflict",
    "mark_done",
    "mark_failed",
    "pending_by_router",
    "pending_ops",
]

log = logging.getLogger(__name__)

#: The operation that makes a router match the database for the services it carries.
RECONCILE = "reconcile"
#: The operation that drops the live PPPoE session named in ``payload["key"]`` (exactly once, after the reconcile).
DISCONNECT = "disconnect"

#: The PostgreSQL channel :func:`enqueue` notifies, with the router's id as payload.
NOTIFY_CHANNEL = "edgebill_router_ops"

#: The payload key of a pending operation whose service the router cannot carry: the conflict's reason.
CONFLICT_KEY = "conflict"

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class RouterOpRecord:
    id: int
    router_id: int
    router: str
    service_id: int | None
    op: str
    payload: JsonDict
    status: str
    attempts: int
    not_before: datetime
    created_at: datetime
    done_at: datetime | None
    last_error: str | None

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "router_id": self.router_id,
            "router": self.router,
            "service_id": self.service_id,
            "op": self.op,
            "payload": self.payload,
            "status": self.status,
            "attempts": self.attempts,
            "not_before": self.not_before.isoformat(),
            "created_at": self.created_at.isoformat(),
            "done_at": self.done_at.isoformat() if self.done_at else None,
            "last_error": self.last_error,
        }


def _record_of(row: RouterOp, router_name: str) -> RouterOpRecord:
    return RouterOpRecord(
        id=row.id,
        router_id=row.router_id,
        router=router_name,
        service_id=row.service_id,
        op=row.op,
        payload=dict(row.payload),
        status=row.status.value,
        attempts=row.attempts,
        not_before=row.not_before,
        created_at=row.created_at,
        done_at=row.done_at,
        last_error=row.last_error,
    )


def enqueue(
    session: Session,
    router_id: int,
    op: str,
    payload: JsonDict | None = None,
    *,
    service_id: int | None = None,
    not_before: datetime | None = None,
) -> RouterOp:
    """Add a pending operation for ``router_id`` in the caller's transaction and return the row."""
    if not op or len(op) > 40:
        raise Invalid(f"invalid router operation {op!r}")
    row = RouterOp(
        router_id=router_id,
        service_id=service_id,
        op=op,
        payload=dict(payload or {}),
        status=RouterOpStatus.PENDING,
        attempts=0,
        not_before=not_before or utcnow(),
    )
    session.add(row)
    session.flush()
    due_now = not_before is None or not_before <= utcnow()
    if due_now and session.get_bind().dialect.name == "postgresql":
        # Delivered when the transaction commits (once per router however many rows), dropped on rollback.
        session.execute(
            text("SELECT pg_notify(:channel, :router)"), {"channel": NOTIFY_CHANNEL, "router": str(router_id)}
        )
    log.debug("queued router operation %s %s for router %s", row.id, op, router_id)
    return row


def enqueue_reconcile(session: Session, router_id: int, *, reason: str, service_id: int | None = None) -> RouterOp:
    """Queue a ``reconcile`` of ``router_id`` (``reason`` says what changed, e.g. ``service.add``)."""
    payload: JsonDict = {"reason": reason}
    if service_id is not None:
        payload["service_id"] = service_id
    return enqueue(session, router_id, RECONCILE, payload, service_id=service_id)


def list_ops(
    session: Session,
    *,
    router: str | None = None,
    status: str | None = None,
    service_id: int | None = None,
    newest_first: bool = False,
    limit: int = 1000,
) -> list[RouterOpRecord]:
    """Operations in queue order (``id``, or its reverse with ``newest_first``), optionally for one router name,
    one status and one service."""
    query = select(RouterOp, Router.name).join(Router, Router.id == RouterOp.router_id)
    query = query.order_by(RouterOp.id.desc() if newest_first else RouterOp.id)
    if service_id is not None:
        query = query.where(RouterOp.service_id == service_id)
    if router is not None:
        query = query.where(Router.name == router)
    if status is not None:
        try:
            query = query.where(RouterOp.status == RouterOpStatus(status))
        except ValueError:
            raise Invalid(f"invalid operation status {status!r}: expected pending, done or failed") from None
    query = query.limit(max(1, limit))
    return [_record_of(row, name) for row, name in session.execute(query)]


def pending_by_router(session: Session) -> dict[int, int]:
    """How many operations are pending for each router id (routers with none left out)."""
    query = (
        select(RouterOp.router_id, func.count())
        .where(RouterOp.status == RouterOpStatus.PENDING)
        .group_by(RouterOp.router_id)
    )
    return {router_id: count for router_id, count in session.execute(query)}


def due_ops(session: Session, router_id: int, *, now: datetime | None = None) -> list[RouterOp]:
    """Pending operations for ``router_id`` whose ``not_before`` has passed, in ``id`` order."""
    moment = now or utcnow()
    query = (
        select(RouterOp)
        .where(
            RouterOp.router_id == router_id,
            RouterOp.status == RouterOpStatus.PENDING,
            RouterOp.not_before <= moment,
        )
        .order_by(RouterOp.id)
    )
    return list(session.scalars(query))


def routers_with_due_ops(session: Session, *, now: datetime | None = None) -> list[str]:
    """Names of the routers that have pending operations whose ``not_before`` has passed."""
    moment = now or utcnow()
    query = (
        select(Router.name)
        .join(RouterOp, RouterOp.router_id == Router.id)
        .where(RouterOp.status == RouterOpStatus.PENDING, RouterOp.not_before <= moment)
        .distinct()
        .order_by(Router.name)
    )
    return list(session.scalars(query))


def pending_ops(session: Session, router_id: int, *, services: Collection[int] | None = None) -> list[RouterOp]:
    """Every pending operation of ``router_id`` in ``id`` order, due or not; with ``services``, only theirs."""
    query = select(RouterOp).where(RouterOp.router_id == router_id, RouterOp.status == RouterOpStatus.PENDING)
    if services is not None:
        query = query.where(RouterOp.service_id.in_(services))
    return list(session.scalars(query.order_by(RouterOp.id)))


def due_services(session: Session, router_name: str) -> frozenset[int] | None:
    """The services named by the router's due operations: what a scoped run must push now.

    None when one of them names no service (the router must be run in full); empty when nothing is due.
    """
    rows = session.scalars(
        select(RouterOp.service_id)
        .join(Router, Router.id == RouterOp.router_id)
        .where(Router.name == router_name, RouterOp.status == RouterOpStatus.PENDING, RouterOp.not_before <= utcnow())
    ).all()
    if any(service_id is None for service_id in rows):
        return None
    return frozenset(service_id for service_id in rows if service_id is not None)


def attempts(session: Session, op_id: int) -> int:
    """How many times operation ``op_id`` was tried so far (0 when it is gone)."""
    row = session.get(RouterOp, op_id)
    return row.attempts if row is not None else 0


def _get(session: Session, op_id: int) -> RouterOp:
    row = session.get(RouterOp, op_id)
    if row is None:
        raise NotFound(f"router operation {op_id} not found")
    if row.status is not RouterOpStatus.PENDING:
        raise Conflict(f"router operation {op_id} is already {row.status.value}")
    return row


def mark_done(session: Session, op_id: int) -> None:
    """Record that a pending operation was carried out."""
    row = _get(session, op_id)
    row.attempts += 1
    row.status = RouterOpStatus.DONE
    row.done_at = utcnow()
    row.last_error = None
    session.flush()


def mark_failed(session: Session, op_id: int, error: str, *, retry_in: timedelta | None) -> None:
    """Record a failed attempt: retried after ``retry_in``, or given up (status ``failed``) when ``None``."""
    row = _get(session, op_id)
    _failed(row, error, retry_in)
    if CONFLICT_KEY in row.payload:
        row.payload = {k: v for k, v in row.payload.items() if k != CONFLICT_KEY}
    session.flush()


def mark_conflict(session: Session, op_id: int, reason: str, *, retry_in: timedelta) -> None:
    """Record that the router cannot carry the operation's service (``reason``); it stays pending, retried after
    ``retry_in``, so it completes once the cause is fixed. The reason is its ``last_error`` and is kept in its
    payload (``conflict``) while it lasts: :func:`conflicts_of_service` reads it back."""
    row = _get(session, op_id)
    _failed(row, reason, retry_in)
    row.payload = {**row.payload, CONFLICT_KEY: reason[:2000]}
    session.flush()


def _conflicts(session: Session, query: Select[RouterOp]) -> list[RouterOp]:
    query = query.where(RouterOp.status == RouterOpStatus.PENDING).order_by(RouterOp.id)
    return [row for row in session.scalars(query) if row.payload.get(CONFLICT_KEY)]


def conflicts_of_service(session: Session, service_id: int) -> str | None:
    """Why the router does not carry service ``service_id`` (its latest pending conflict), or None."""
    rows = _conflicts(session, select(RouterOp).where(RouterOp.service_id == service_id))
    return str(rows[-1].payload[CONFLICT_KEY]) if rows else None


def conflicts_by_router(session: Session, router_id: int | None = None) -> dict[int, dict[int, str]]:
    """The services each router does not carry because of a conflict, with the reason (routers without left out)."""
    query = select(RouterOp).where(RouterOp.service_id.is_not(None))
    if router_id is not None:
        query = query.where(RouterOp.router_id == router_id)
    out: dict[int, dict[int, str]] = {}
    for row in _conflicts(session, query):
        assert row.service_id is not None
        out.setdefault(row.router_id, {})[row.service_id] = str(row.payload[CONFLICT_KEY])
    return out


def _failed(row: RouterOp, error: str, retry_in: timedelta | None) -> None:
    row.attempts += 1
    row.last_error = error[:2000]
    if retry_in is None:
        row.status = RouterOpStatus.FAILED
        row.done_at = utcnow()
    else:
        row.not_before = utcnow() + retry_in
