"""Routers: the ``routers`` table mirrors the configuration file; history is never deleted.

:func:`sync_routers` adds routers new in the configuration, updates changed ones and marks the ones that left
it retired (their services and history stay). :func:`check_router` logs in with the router's
driver and reads its facts, for ``edgebill router check``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

import drivers
from daemon.db.models import Router, RouterKind, RouterStatus, utcnow
from daemon.services import audit
from daemon.services.errors import Conflict, NotFound
from drivers.base import DriverError, RouterParams

__all__ = [
    "RouterCheck",
    "RouterConfig",
    "RouterRecord",
    "RoutersConfig",
    "SyncResult",
    "check_router",
    "conflict_summary",
    "find_router",
    "get_router",
    "list_routers",
    "load_router",
    "record_contact",
    "sync_routers",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class RouterConfig(RouterParams, Protocol):
    """What :func:`sync_routers` reads of one configured router: its connection settings and its site."""

    @property
    def site(self) -> str: ...


class RoutersConfig(Protocol):
    """What :func:`sync_routers` reads of the settings (``daemon.config.Settings``)."""

    @property
    def routers(self) -> Sequence[RouterConfig]: ...


@dataclass(frozen=True)
class RouterRecord:
    id: int
    name: str
    kind: str
    host: str
    port: int
    site: str | None
    status: str
    last_seen_at: datetime | None
    last_sync_at: datetime | None
    last_error: str | None
    identity: str | None
    version: str | None
    model: str | None
    created_at: datetime
    retired_at: datetime | None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    def to_json(self) -> JsonDict:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "site": self.site,
            "status": self.status,
            "retired": self.retired,
            "last_seen_at": iso(self.last_seen_at),
            "last_sync_at": iso(self.last_sync_at),
            "last_error": self.last_error,
            "identity": self.identity,
            "version": self.version,
            "model": self.model,
            "created_at": self.created_at.isoformat(),
            "retired_at": iso(self.retired_at),
        }


def record_of(row: Router) -> RouterRecord:
    return RouterRecord(
        id=row.id,
        name=row.name,
        kind=row.kind.value,
        host=row.host,
        port=row.port,
        site=row.site,
        status=row.status.value,
        last_seen_at=row.last_seen_at,
        last_sync_at=row.last_sync_at,
        last_error=row.last_error,
        identity=row.identity,
        version=row.version,
        model=row.model,
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


@dataclass(frozen=True)
class SyncResult:
    """Names of the routers :func:`sync_routers` added, updated, retired, and left as they were."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    retired: tuple[str, ...]
    unchanged: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired)


def sync_routers(session: Session, settings: RoutersConfig, actor: str = "config") -> SyncResult:
    """Make the ``routers`` table match the configured routers (by name); see the module docstring.

    A router that comes back into the configuration after being retired is un-retired. Changed identity
    facts (host, port, kind, site) reset its status to ``unknown`` until it is contacted again.
    """
    existing = {row.name: row for row in session.scalars(select(Router))}
    added: list[str] = []
    updated: list[str] = []
    retired: list[str] = []
    unchanged: list[str] = []
    now = utcnow()
    configured: set[str] = set()
    for conf in settings.routers:
        configured.add(conf.name)
        kind = RouterKind(conf.kind)
        site = conf.site or None
        row = existing.get(conf.name)
        if row is None:
            row = Router(name=conf.name, kind=kind, host=conf.host, port=conf.port, site=site)
            row.status = RouterStatus.UNKNOWN
            session.add(row)
            session.flush()
            audit.record(session, actor, "router.add", "router", None, record_of(row).to_json())
            added.append(conf.name)
            continue
        before = record_of(row)
        moved = (row.kind, row.host, row.port) != (kind, conf.host, conf.port)
        row.kind, row.host, row.port, row.site = kind, conf.host, conf.port, site
        if moved:
            row.status = RouterStatus.UNKNOWN
        if row.retired_at is not None:
            row.retired_at = None
        session.flush()
        after = record_of(row)
        if after != before:
            audit.record(session, actor, "router.update", "router", before.to_json(), after.to_json())
            updated.append(conf.name)
        else:
            unchanged.append(conf.name)
    for name, row in sorted(existing.items()):
        if name in configured or row.retired_at is not None:
            continue
        before = record_of(row)
        row.retired_at = now
        row.status = RouterStatus.UNKNOWN
        session.flush()
        audit.record(session, actor, "router.retire", "router", before.to_json(), record_of(row).to_json())
        retired.append(name)
    result = SyncResult(tuple(added), tuple(updated), tuple(retired), tuple(unchanged))
    if result.changed:
        log.info(
            "routers synchronised from configuration: %d added, %d updated, %d retired",
            len(added),
            len(updated),
            len(retired),
        )
    return result


def load_router(session: Session, name: str, *, allow_retired: bool = True) -> Router:
    """The router row called ``name``; :class:`NotFound`, or :class:`Conflict` for a retired one if asked."""
    row = session.scalars(select(Router).where(Router.name == name)).one_or_none()
    if row is None:
        known = ", ".join(session.scalars(select(Router.name).where(Router.retired_at.is_(None)).order_by(Router.name)))
        hint = f" (configured: {known})" if known else " (none configured; add [[routers]] and run edgebill init)"
        raise NotFound(f"router {name!r} not found{hint}")
    if not allow_retired and row.retired_at is not None:
        raise Conflict(f"router {name!r} is retired (no longer in the configuration)")
    return row


def find_router(session: Session, name: str) -> Router | None:
    """The router row called ``name``, retired or not; None when there is none."""
    return session.scalars(select(Router).where(Router.name == name)).one_or_none()


def record_contact(
    session: Session,
    router_id: int,
    *,
    facts: tuple[str, str, str] | None,
    error: str | None,
    conflicts: Sequence[str] = (),
) -> Router | None:
    """Record the outcome of a run against router ``router_id``; None when the row is gone (nothing recorded).

    ``facts`` (identity, version, model) read from the router mark it up and seen now; an ``error`` without them
    marks it down. A run without error is the router's last sync; an error (cut to 2,000 characters) is kept as
    ``last_error`` until the next successful one. A run without error but with ``conflicts`` (entries the router
    does not carry) keeps them as ``last_error``, so they stay visible until resolved.
    """
    row = session.get(Router, router_id)
    if row is None:
        return None
    now = utcnow()
    if facts is not None:
        row.status = RouterStatus.UP
        row.last_seen_at = now
        row.identity, row.version, row.model = facts
    elif error is not None:
        row.status = RouterStatus.DOWN
    if error is None:
        row.last_sync_at = now
        row.last_error = conflict_summary(conflicts)
    else:
        row.last_error = error[:2000]
    return row


def conflict_summary(conflicts: Sequence[str]) -> str | None:
    """``2 conflicts (not on the router): first; second``, cut to 2,000 characters; None without conflicts."""
    if not conflicts:
        return None
    n = len(conflicts)
    return f"{n} conflict{'' if n == 1 else 's'} (not on the router): {'; '.join(conflicts)}"[:2000]


def get_router(session: Session, name: str) -> RouterRecord:
    return record_of(load_router(session, name))


def list_routers(session: Session, *, include_retired: bool = False) -> list[RouterRecord]:
    """Routers by name; retired ones only when asked."""
    query = select(Router).order_by(Router.name)
    if not include_retired:
        query = query.where(Router.retired_at.is_(None))
    return [record_of(row) for row in session.scalars(query)]


@dataclass(frozen=True)
class RouterCheck:
    """The outcome of logging in to a router with its driver and reading its facts."""

    name: str
    kind: str
    host: str
    port: int
    ok: bool
    elapsed_ms: float
    identity: str | None = None
    version: str | None = None
    uptime_seconds: int | None = None
    error: str | None = None
    retryable: bool = False

    def to_json(self) -> JsonDict:
        return {
            "name": self.name,
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "ok": self.ok,
            "identity": self.identity,
            "version": self.version,
            "uptime_seconds": self.uptime_seconds,
            "error": self.error,
            "retryable": self.retryable,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }

    def __str__(self) -> str:
        where = f"{self.name} ({self.kind}) {self.host}:{self.port}"
        if self.ok:
            facts = f"{self.identity}, version {self.version}, up {self.uptime_seconds}s"
            return f"{where}: ok: {facts} ({self.elapsed_ms:.0f} ms)"
        hint = "try again later" if self.retryable else "check the configuration"
        return f"{where}: FAILED: {self.error} ({hint})"


def check_router(params: RouterParams) -> RouterCheck:
    """Connect and log in with the router's driver, read its facts; never raises for router errors."""
    started = time.monotonic()
    base = RouterCheck(params.name, params.kind, params.host, params.port, ok=False, elapsed_ms=0.0)
    try:
        with drivers.create(params) as router:
            facts = router.facts()
    except DriverError as exc:
        elapsed = (time.monotonic() - started) * 1000
        return dataclasses.replace(base, elapsed_ms=elapsed, error=str(exc), retryable=exc.retryable)
    elapsed = (time.monotonic() - started) * 1000
    return dataclasses.replace(
        base,
        ok=True,
        elapsed_ms=elapsed,
        identity=facts.identity,
        version=facts.version,
        uptime_seconds=facts.uptime_seconds,
    )
