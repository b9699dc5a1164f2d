"""The reconcile engine: make each router carry exactly what the database says, and nothing we do not own.

One run for one router, :func:`reconcile_router`:

1. In a short transaction, snapshot the router's pending ``router_ops``, then load its services (PPPoE
   passwords decrypted) and compile the desired state (:func:`daemon.reconcile.load.load`).
2. Outside any transaction, talk to the router: ``facts()`` (full runs only), ``read_state()``, ``plan()``;
   unless it is a dry run, ``apply()`` the plan, run the pending exactly-once operations (``disconnect``) in
   queue order, and ``read_state()`` again to confirm nothing is left to do.
3. In a second transaction, record what happened: the router's status, facts, ``last_sync_at`` and
   ``last_error`` (after a run without error: the conflicts it found); an audit entry when anything was
   written (``router.reconcile``, or ``router.drift`` when the router had changed although nothing was
   pending: someone edited it by hand); and the operations: ``reconcile`` rows are done once a run succeeds
   (unless their service is in conflict), ``disconnect`` rows once their session is dropped (or was already
   gone). A failed run leaves them pending with one more attempt and a later ``not_before``
   (:func:`retry_delay`), so they complete when the router returns.

A conflict is never silent. An entry the router cannot carry (a name it refuses, an address outside a
gateway's subnets) or whose key is held by an entry edgebill does not own is reported in the plan, and the
service it belongs to (:func:`conflicted_services`) is not done: its ``reconcile`` operation stays pending with
the conflict as its ``last_error`` (:func:`daemon.services.ops.mark_conflict`), retried with backoff, so it
completes once the cause is fixed. A service found in conflict without a pending operation (one stored before
the rule that refuses it) is given one. The router row's ``last_error`` lists the conflicts of a clean run.

A scoped run (``services=``) loads only those services (terminated ones too: their entries are removed) and
only their pending operations, and reads, plans and writes only their entries (:class:`drivers.models.Scope`);
the other operations stay queued for their own run. When the driver cannot read the scope it runs in full.

A dry run plans against the live router and records nothing. :func:`reconcile_all` runs every configured
router concurrently, one thread each. State changes that queue work for a run are made by
:mod:`daemon.services.state`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

import drivers
from daemon.config import ConfigError
from daemon.db.models import utcnow
from daemon.reconcile.load import Loaded, QueuedOp, ReconcileSettings, load, router_params
from daemon.reconcile.report import ReconcileReport
from daemon.security import SecretError
from daemon.services import audit, ops, routers
from daemon.services.errors import ServiceError
from drivers import DriverFactory
from drivers.base import ApplyError, Driver, DriverError, ScopeUnavailable
from drivers.models import Change, ChangeSet, Conflict
from policies.desired import DesiredState
from policies.provisioning import ProvisioningError

__all__ = [
    "DISCONNECT",
    "RECONCILE",
    "conflict_lines",
    "conflicted_services",
    "reconcile_all",
    "reconcile_router",
    "retry_delay",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

#: Operation: make the router match the database (idempotent; any successful run completes it).
RECONCILE: Final = ops.RECONCILE
#: Operation: drop the live PPPoE session named in ``payload["key"]`` (exactly once, after the reconcile).
DISCONNECT: Final = ops.DISCONNECT

_FIRST_RETRY: Final = timedelta(seconds=15)
_LAST_RETRY: Final = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """Backoff before the next try of an operation that failed ``attempts`` times: 15 s doubling, at most 1 h."""
    delay: timedelta = _FIRST_RETRY * (2 ** max(0, min(attempts - 1, 16)))
    return min(delay, _LAST_RETRY)


# --- one router ------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What happened on the router, filled in as the run goes."""

    plan: ChangeSet | None = None
    applied: list[str] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    done_ops: list[int] = field(default_factory=list)
    conflicted: dict[int, str] = field(default_factory=dict)
    residual: int = 0
    facts: tuple[str, str, str] | None = None
    error: DriverError | None = None


def reconcile_router(
    session_factory: sessionmaker[Session],
    settings: ReconcileSettings,
    router_name: str,
    *,
    dry_run: bool = False,
    factory: DriverFactory = drivers.create,
    services: Collection[int] | None = None,
) -> ReconcileReport:
    """Reconcile one router (see the module docstring). Never raises for router or data problems: the report's
    ``error`` says what went wrong, and the router row records it.

    With ``services``, the run is scoped to them: only their rows are loaded (whatever their state), only their
    entries are read, planned and written (:class:`~drivers.models.Scope`), and only their pending operations
    are carried out; the others stay queued. A service that is not on this router is an error. When the driver
    cannot read the scope (:class:`~drivers.base.ScopeUnavailable`), the same run goes on in full.
    """
    started = utcnow()
    scoped = tuple(sorted(set(services))) if services is not None else None
    try:
        params = router_params(settings, router_name)
        params.check_secrets()  # moved or chmod'ed since the start: the kept session would not notice
        with session_factory.begin() as session:
            loaded = load(session, settings, router_name, scoped)
    except (ServiceError, ProvisioningError) as exc:
        log.warning("reconcile %s: %s", router_name, exc)
        return ReconcileReport(router_name, dry_run, started, utcnow(), error=str(exc), scope=scoped)
    except (ConfigError, SecretError) as exc:
        return _unusable(session_factory, router_name, exc, started, dry_run, scoped)

    try:
        driver = factory(params)
    except ValueError as exc:  # a router kind or setting no driver accepts: a configuration problem
        log.warning("reconcile %s: %s", router_name, exc)
        return ReconcileReport(router_name, dry_run, started, utcnow(), error=str(exc), scope=scoped)

    run = _Run()
    try:
        with driver as router:
            if loaded.scope is None:  # a scoped run is on the clock: the router's facts wait for a full one
                run.facts = _facts(router)
            try:
                run.plan = router.plan(loaded.desired, router.read_state(loaded.scope), loaded.scope)
            except ScopeUnavailable as exc:
                if loaded.scope is None:
                    raise
                log.info("reconcile %s: %s; running in full", router_name, exc)
                with session_factory.begin() as session:
                    loaded = load(session, settings, router_name)
                run.facts = _facts(router)
                run.plan = router.plan(loaded.desired, router.read_state())
            run.conflicted = conflicted_services(run.plan.conflicts, loaded.desired)
            if not dry_run:
                _apply(router, run.plan, loaded.ops, run)
                if run.applied:  # read back what the router now holds; nothing written, nothing to confirm
                    _hold_residual(run, _residual(router, loaded), loaded)
    except ApplyError as exc:
        run.applied.extend(c.describe() for c in exc.applied)
        run.error = exc
    except DriverError as exc:
        run.error = exc
    except (ServiceError, ProvisioningError) as exc:  # loading the full run after a fallback
        log.warning("reconcile %s: %s", router_name, exc)
        return ReconcileReport(router_name, dry_run, started, utcnow(), error=str(exc))
    except (ConfigError, SecretError) as exc:  # a secret read by the driver, or by the full run's load
        return _unusable(session_factory, router_name, exc, started, dry_run, None)

    # Not ``run.plan or ChangeSet()``: a plan of conflicts alone has no changes, so its length is 0.
    plan = run.plan if run.plan is not None else ChangeSet()
    # Drift is an unexpected change found by a full run; a scoped run looks at too little to claim it.
    drift = bool(plan.changes) and not loaded.ops and loaded.scope is None
    if not dry_run:
        with session_factory.begin() as session:
            _record(session, loaded, router_name, plan, run, drift)
    report = ReconcileReport(
        router=router_name,
        dry_run=dry_run,
        started_at=started,
        finished_at=utcnow(),
        plan=tuple(c.describe() for c in plan.changes),
        counts=plan.counts(),
        conflicts=tuple(conflict_lines(plan.conflicts, loaded.desired)),
        applied=tuple(run.applied),
        disconnected=tuple(run.disconnected),
        drift=drift and not dry_run,
        ops_done=len(run.done_ops),
        ops_pending=0 if dry_run else len(loaded.ops) - len(run.done_ops),
        conflicted=tuple(sorted(run.conflicted)),
        residual=run.residual,
        error=str(run.error) if run.error else None,
        scope=loaded.services,
    )
    if report.error or report.conflicts:
        log.warning("reconcile %s", report.summary())
    elif report.residual:
        log.warning("reconcile %s: the router still differs after apply; it may spell a value differently", router_name)
    return report


def _unusable(
    session_factory: sessionmaker[Session],
    router_name: str,
    exc: ConfigError | SecretError,
    started: datetime,
    dry_run: bool,
    scope: tuple[int, ...] | None,
) -> ReconcileReport:
    """A run stopped by a secret it cannot use (a key or password file moved, emptied, opened to all users).

    The message names the file and what to do. Unless it is a dry run, it becomes the router's ``last_error``
    and the router's pending operations wait (with the usual backoff) for the file to be fixed.
    """
    error = str(exc)
    log.error("reconcile %s: %s", router_name, error)
    if not dry_run:
        with session_factory.begin() as session:
            row = routers.find_router(session, router_name)
            if row is not None:
                routers.record_contact(session, row.id, facts=None, error=error)
                for op in ops.pending_ops(session, row.id, services=scope):
                    ops.mark_failed(session, op.id, error, retry_in=retry_delay(ops.attempts(session, op.id) + 1))
    return ReconcileReport(router_name, dry_run, started, utcnow(), error=error, scope=scope)


def _residual(router: Driver, loaded: Loaded) -> tuple[Change, ...]:
    """The changes a plan against a fresh read still finds (none once the router holds what was written)."""
    try:
        return router.plan(loaded.desired, router.read_state(loaded.scope), loaded.scope).changes
    except ScopeUnavailable as exc:  # the writes are done; the next full run confirms them
        log.info("cannot confirm the scoped run: %s", exc)
        return ()


def _hold_residual(run: _Run, residual: Sequence[Change], loaded: Loaded) -> None:
    """A write the router did not keep is not done: its service's operations stay pending, as for a conflict."""
    run.residual = len(residual)
    held = conflicted_services(
        [Conflict(c.kind, c.key, "still differs after it was written (the router may spell it differently)")
         for c in residual],
        loaded.desired,
    )  # fmt: skip
    for service_id, reason in held.items():
        run.conflicted.setdefault(service_id, reason)
    kept = {op.id for op in loaded.ops if op.op == RECONCILE and op.service_id in held}
    run.done_ops = [op_id for op_id in run.done_ops if op_id not in kept]


def _facts(router: Driver) -> tuple[str, str, str]:
    facts = router.facts()
    return facts.identity, facts.version, facts.model


def _apply(router: Driver, plan: ChangeSet, pending: Sequence[QueuedOp], run: _Run) -> None:
    """Write the plan, then the exactly-once operations in queue order; record each success in ``run``."""
    if plan.changes or plan.disconnect:
        result = router.apply(plan)
        run.applied.extend(c.describe() for c in result.applied)
        run.disconnected.extend(result.disconnected)
    dropped = set(run.disconnected) | set(plan.disconnect)
    for op in pending:
        if op.op == RECONCILE:
            if op.service_id not in run.conflicted:  # a service in conflict is not done: it stays pending
                run.done_ops.append(op.id)
        elif op.op == DISCONNECT:
            if op.key is None:
                log.warning("router operation %s (disconnect) names no session; completing it", op.id)
            elif op.key not in dropped:
                # Raises on failure: this and the later operations stay pending, in order.
                if router.disconnect(op.key):
                    run.disconnected.append(op.key)
                dropped.add(op.key)
            run.done_ops.append(op.id)
        else:
            log.warning("router operation %s has unknown kind %r; left pending", op.id, op.op)


def conflict_lines(conflicts: Sequence[Conflict], desired: DesiredState) -> list[str]:
    """One secret-free line per conflict: the services ``desired`` left out, then the driver's ``conflicts``."""
    return [r.reason for r in desired.refused] + [f"{c.kind} {c.key}: {c.reason}" for c in conflicts]


def conflicted_services(conflicts: Sequence[Conflict], desired: DesiredState) -> dict[int, str]:
    """The services that ``conflicts`` (or ``desired`` itself) keep off the router, each with the first reason.

    The services ``desired`` refused come first. A driver's conflict names its entry by key: a subscriber's
    key, an address-list entry ``list|address``, or a profile (every subscriber on it is then in conflict).
    Conflicts that name none of these (a table of the router's own) belong to the router alone.
    """
    by_key = {s.key: s.service_id for s in desired.subscribers}
    by_address = {str(s.address): s.service_id for s in desired.subscribers if s.address is not None}
    out: dict[int, str] = {r.service_id: r.reason for r in reversed(desired.refused)}
    for c in conflicts:
        reason = f"{c.kind} {c.key}: {c.reason}"
        if c.key in by_key:
            ids = [by_key[c.key]]
        elif "|" in c.key and c.key.rpartition("|")[2] in by_address:
            ids = [by_address[c.key.rpartition("|")[2]]]
        else:
            ids = [s.service_id for s in desired.subscribers if s.profile == c.key]
        for service_id in ids:
            out.setdefault(service_id, reason)
    return out


def _record(session: Session, loaded: Loaded, name: str, plan: ChangeSet, run: _Run, drift: bool) -> None:
    error = str(run.error) if run.error is not None else None
    conflicts = conflict_lines(plan.conflicts, loaded.desired)
    if loaded.services is not None:  # a scoped run saw only its services' conflicts: keep the others'
        others = ops.conflicts_by_router(session, loaded.router_id).get(loaded.router_id, {})
        conflicts += [reason for sid, reason in sorted(others.items()) if sid not in loaded.services]
    row = routers.record_contact(session, loaded.router_id, facts=run.facts, error=error, conflicts=conflicts)
    if row is None:  # deleted meanwhile: nothing to record against
        return
    if run.applied or run.disconnected:
        entry: JsonDict = {
            "id": row.id,
            "name": name,
            "applied": run.applied,
            "disconnected": run.disconnected,
            "counts": plan.counts(),
            "error": row.last_error if run.error else None,
        }
        if loaded.services is not None:
            entry["scope"] = list(loaded.services)
        audit.record(
            session,
            "reconcile",
            "router.drift" if drift else "router.reconcile",
            "router",
            None,
            entry,
            entity_id=row.id,
        )
    done = set(run.done_ops)
    queued: set[int] = set()
    for op in loaded.ops:
        if op.id in done:
            ops.mark_done(session, op.id)
        elif run.error is not None and op.op in (RECONCILE, DISCONNECT):
            attempts = ops.attempts(session, op.id) + 1
            ops.mark_failed(session, op.id, str(run.error), retry_in=retry_delay(attempts))
        elif op.op == RECONCILE and op.service_id in run.conflicted:
            attempts = ops.attempts(session, op.id) + 1
            ops.mark_conflict(session, op.id, run.conflicted[op.service_id], retry_in=retry_delay(attempts))
            queued.add(op.service_id)
    if run.error is not None:
        return
    # A service in conflict with nothing queued (stored before the rule that refuses it, or its operation done
    # by an older version): queue one, so that the conflict shows on the service and is retried until fixed.
    for service_id, reason in sorted(run.conflicted.items()):
        if service_id not in queued:
            op_row = ops.enqueue_reconcile(session, row.id, reason="router.conflict", service_id=service_id)
            ops.mark_conflict(session, op_row.id, reason, retry_in=retry_delay(1))


# --- all routers -----------------------------------------------------------------------------------------------


def reconcile_all(
    session_factory: sessionmaker[Session],
    settings: ReconcileSettings,
    *,
    dry_run: bool = False,
    factory: DriverFactory = drivers.create,
    max_workers: int | None = None,
) -> list[ReconcileReport]:
    """Reconcile every configured router concurrently (one thread per router); reports in configuration order."""
    names = [r.name for r in settings.routers]
    if not names:
        return []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max_workers or len(names), thread_name_prefix="reconcile") as pool:
        futures = [
            pool.submit(reconcile_router, session_factory, settings, name, dry_run=dry_run, factory=factory)
            for name in names
        ]
        reports = [f.result() for f in futures]
    log.info(
        "reconciled %d routers in %.2fs: %d failed",
        len(reports),
        time.monotonic() - started,
        sum(1 for r in reports if not r.ok),
    )
    return reports
