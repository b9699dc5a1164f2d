"""What the daemon's ``/metrics`` and ``/readyz`` read from the database: a few aggregate queries, no rows.

:func:`ping` answers whether the database can be queried; :func:`snapshot` reads, in one transaction, each
router's state, the router work queue's depth and oldest entry per router, and the numbers of payments and
invoices recorded. Each is one aggregate query over an indexed table, cheap enough for every scrape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.db.models import Invoice, Payment, Router, RouterOp, RouterOpStatus, RouterStatus

__all__ = ["QueueDepth", "RouterHealth", "Snapshot", "ping", "snapshot"]


@dataclass(frozen=True)
class RouterHealth:
    """A router in service (not retired), as its last run recorded it."""

    name: str
    kind: str
    up: bool
    #: When a run last brought the router to the desired state; ``None``: never.
    last_sync_at: datetime | None


@dataclass(frozen=True)
class QueueDepth:
    """A router's operations waiting in the queue (pending, due or retrying later)."""

    router: str
    pending: int
    #: When the oldest of them was queued.
    oldest: datetime


@dataclass(frozen=True)
class Snapshot:
    routers: tuple[RouterHealth, ...]
    queue: tuple[QueueDepth, ...]
    #: Payment rows recorded (refunds included), and invoices and credit notes issued.
    payments: int
    invoices: int


def ping(session: Session) -> None:
    """Query the database; raises SQLAlchemy's ``OperationalError`` (or another ``DBAPIError``) when it cannot."""
    session.execute(select(func.count()).select_from(Router))


def snapshot(session: Session) -> Snapshot:
    """The figures of ``/metrics`` that live in the database."""
    routers = tuple(
        RouterHealth(name, str(kind), status is RouterStatus.UP, last_sync_at)
        for name, kind, status, last_sync_at in session.execute(
            select(Router.name, Router.kind, Router.status, Router.last_sync_at)
            .where(Router.retired_at.is_(None))
            .order_by(Router.name)
        )
    )
    queue = tuple(
        QueueDepth(name, pending, oldest)
        for name, pending, oldest in session.execute(
            select(Router.name, func.count(RouterOp.id), func.min(RouterOp.created_at))
            .join(Router, Router.id == RouterOp.router_id)
            .where(RouterOp.status == RouterOpStatus.PENDING)
            .group_by(Router.name)
            .order_by(Router.name)
        )
    )
    payments = session.scalar(select(func.count()).select_from(Payment)) or 0
    invoices = session.scalar(select(func.count()).select_from(Invoice)) or 0
    return Snapshot(routers, queue, payments, invoices)
