"""The reconcile engine: make each router carry exactly what the database says, and nothing we do not own.

One run for one router, :func:`reconcile_router`:

1. In a short transaction, snapshot the router's pending ``router_ops``, then load its services (PPPoE
   passwords decrypted) and compile the desired state with :func:`policies.provisioning.compile_desired`.
2. Outside any transaction, talk to the router: ``facts()`` (full runs only), ``read_state()``, ``plan()``;
   unless it is a dry run, ``apply()`` the plan, run the pending exactly-once operations (``disconnect``) in
   queue order, and ``read_state()`` again to confirm nothing is left to do.
3. In a second transaction, record what happened: the router's status, facts, ``last_sync_at`` and
   ``last_error``; an audit entry when anything was written (``router.reconcile``, or ``router.drift`` when
   the router had changed although nothing was pending: someone edited it by hand); and the operations:
   ``reconcile`` rows are done once a run succeeds, ``disconnect`` rows once their session is dropped (or was
   already gone). A failed run leaves them pending with one more attempt and a later ``not_before``
   (:func:`retry_delay`), so they complete when the router returns.

A scoped run (``services=``) loads only those services (terminated ones too: their entries are removed) and
only their pending operations, and reads, plans and writes only their entries (:class:`drivers.models.Scope`);
the other operations stay queued for their own run. When the driver cannot read the scope it runs in full.

A dry run plans against the live router and records nothing. :func:`reconcile_all` runs every configured
router concurrently, one thread each. :func:`set_service_state` is how an admin or the dunning run throttles,
suspends, resumes or terminates a service: it records the change and its audit entry and queues the reconcile
and the disconnect in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Address
from typing import Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import drivers
from daemon.db.models import Router, RouterOp, RouterOpStatus, RouterStatus, Service, utcnow
from daemon.security import SecretBox, SecretError
from daemon.services import audit, ops
from daemon.services.errors import Conflict, Invalid, NotFound, ServiceError
from drivers import DriverFactory
from drivers.base import ApplyError, Driver, DriverError, RouterParams, ScopeUnavailable
from drivers.models import ChangeSet, Scope
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ServiceState
from policies.provisioning import (
    DEFAULT_THROTTLE_RATE,
    ProvisioningError,
    ServiceRecord,
    compile_desired,
    subscriber_key,
)
from policies.rates import Burst, RateLimit

__all__ = [
    "DISCONNECT",
    "RECONCILE",
    "STATE_ACTIONS",
    "ReconcileReport",
    "ReconcileSettings",
    "ServiceStateChange",
    "desired_state",
    "due_services",
    "reconcile_all",
    "reconcile_router",
    "retry_delay",
    "services_by_router",
    "set_service_state",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

#: Operation: make the router match the database (idempotent; any successful run completes it).
RECONCILE: Final = ops.RECONCILE
#: Operation: drop the live PPPoE session named in ``payload["key"]`` (exactly once, after the reconcile).
DISCONNECT: Final = "disconnect"

#: CLI verbs and the states they set.
STATE_ACTIONS: Final[dict[str, ServiceState]] = {
    "throttle": ServiceState.THROTTLED,
    "suspend": ServiceState.SUSPENDED,
    "resume": ServiceState.ACTIVE,
    "terminate": ServiceState.TERMINATED,
}

_FIRST_RETRY: Final = timedelta(seconds=15)
_LAST_RETRY: Final = timedelta(hours=1)


# --- what the engine reads of the settings -------------------------------------------------------------------


class _DunningStep(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def throttle_rate(self) -> tuple[int, int] | None: ...


class _Enforcement(Protocol):
    @property
    def address_list(self) -> str: ...
    @property
    def suspend_mode(self) -> str: ...
    @property
    def payment_page_url(self) -> str: ...


class _Security(Protocol):
    def fernet_keys(self) -> tuple[bytes, ...]: ...


class ReconcileSettings(Protocol):
    """What the engine reads of the settings (``daemon.config.Settings`` satisfies it)."""

    @property
    def routers(self) -> Sequence[RouterParams]: ...
    @property
    def dunning(self) -> Sequence[_DunningStep]: ...
    @property
    def enforcement(self) -> _Enforcement: ...
    @property
    def security(self) -> _Security: ...


def _router_params(settings: ReconcileSettings, name: str) -> RouterParams:
    for router in settings.routers:
        if router.name == name:
            return router
    known = ", ".join(r.name for r in settings.routers) or "none"
    raise NotFound(f"router {name!r} is not in the configuration (configured: {known})")


def throttle_rate_of(settings: ReconcileSettings) -> RateLimit:
    """The rate of the first ``throttle`` step of the dunning ladder, else the default throttle rate."""
    for step in settings.dunning:
        if step.action == "throttle" and step.throttle_rate is not None:
            down, up = step.throttle_rate
            return RateLimit(download=down, upload=up)
    return DEFAULT_THROTTLE_RATE


def enforcement_of(settings: ReconcileSettings) -> EnforcementSpec:
    e = settings.enforcement
    if e.suspend_mode == "block":
        return EnforcementSpec(address_list=e.address_list, suspend_mode="block", payment_page_url=e.payment_page_url)
    return EnforcementSpec(address_list=e.address_list, suspend_mode="disable", payment_page_url=e.payment_page_url)


def retry_delay(attempts: int) -> timedelta:
    """Backoff before the next try of an operation that failed ``attempts`` times: 15 s doubling, at most 1 h."""
    delay: timedelta = _FIRST_RETRY * (2 ** max(0, min(attempts - 1, 16)))
    return min(delay, _LAST_RETRY)


# --- the report ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileReport:
    """The outcome of one run for one router; ``plan`` holds secret-free lines from ``Change.describe()``.

    ``scope`` lists the services a scoped run was limited to; it is None for a full run (and for a scoped run
    the driver could not narrow, which ran in full instead). A scoped run never reports ``drift``.
    """

    router: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    plan: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=lambda: {"add": 0, "change": 0, "remove": 0})
    conflicts: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    disconnected: tuple[str, ...] = ()
    drift: bool = False
    ops_done: int = 0
    ops_pending: int = 0
    residual: int = 0
    error: str | None = None
    scope: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.disconnected)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def summary(self) -> str:
        """One line for the log and the CLI."""
        c = self.counts
        head = f"{self.router}: {'plan' if self.dry_run else 'applied'} +{c['add']} ~{c['change']} -{c['remove']}"
        parts = [head]
        if self.scope is not None:
            parts.append(f"scope: {len(self.scope)} service{'' if len(self.scope) == 1 else 's'}")
        if not self.dry_run:
            parts.append(f"{len(self.applied)} writes")
        if self.disconnected:
            parts.append(f"{len(self.disconnected)} disconnected")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} conflicts")
        if self.drift:
            parts.append("drift corrected")
        if self.ops_done or self.ops_pending:
            parts.append(f"ops {self.ops_done} done, {self.ops_pending} pending")
        if self.residual:
            parts.append(f"{self.residual} changes still pending after apply")
        parts.append(f"{self.seconds:.2f}s")
        if self.error:
            parts.append(f"error: {self.error}")
        return ", ".join(parts)

    def to_json(self) -> JsonDict:
        return {
            "router": self.router,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "plan": list(self.plan),
            "counts": dict(self.counts),
            "conflicts": list(self.conflicts),
            "applied": list(self.applied),
            "disconnected": list(self.disconnected),
            "drift": self.drift,
            "ops_done": self.ops_done,
            "ops_pending": self.ops_pending,
            "residual": self.residual,
            "error": self.error,
            "scope": list(self.scope) if self.scope is not None else None,
        }


# --- loading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    id: int
    op: str
    service_id: int | None
    key: str | None


@dataclass(frozen=True)
class _Loaded:
    """What one run works from. ``services`` and ``scope`` are set for a scoped run, None for a full one."""

    router_id: int
    desired: DesiredState
    ops: tuple[_Op, ...]
    services: tuple[int, ...] | None = None
    scope: Scope | None = None


def _record_of(row: Service, box: SecretBox | None) -> ServiceRecord:
    plan = row.plan
    burst = None
    if plan.burst_download_bps and plan.burst_upload_bps:
        burst = Burst(
            download=plan.burst_download_bps,
            upload=plan.burst_upload_bps,
            threshold_download=plan.burst_threshold_download_bps or plan.download_bps,
            threshold_upload=plan.burst_threshold_upload_bps or plan.upload_bps,
            time_s=plan.burst_time_s or 1,
        )
    password: str | None = None
    # A terminated service is only removed: its password is never needed, so never decrypted.
    if (
        row.connection_type is ConnectionType.PPPOE
        and row.pppoe_password is not None
        and row.state is not ServiceState.TERMINATED
    ):
        if box is None:
            raise SecretError("no encryption key to decrypt PPPoE passwords")
        password = box.decrypt(row.pppoe_password)
    return ServiceRecord(
        service_id=row.id,
        connection=row.connection_type,
        login=row.pppoe_login,
        password=password,
        address=IPv4Address(row.ipv4) if row.ipv4 else None,
        plan_name=plan.name,
        plan_rate=RateLimit(download=plan.download_bps, upload=plan.upload_bps, burst=burst),
        state=row.state,
        state_reason=row.state_reason,
    )


def _records(session: Session, router_id: int, box: SecretBox | None) -> list[ServiceRecord]:
    rows = session.scalars(
        select(Service)
        .where(Service.router_id == router_id, Service.state != ServiceState.TERMINATED)
        .order_by(Service.id)
    ).all()
    return [_record_of(row, box) for row in rows]


def _compile(settings: ReconcileSettings, records: Sequence[ServiceRecord]) -> DesiredState:
    return compile_desired(records, throttle_rate=throttle_rate_of(settings), enforcement=enforcement_of(settings))


def desired_state(session: Session, settings: ReconcileSettings, router_id: int) -> DesiredState:
    """The desired state of one router, compiled from its services in the database."""
    needs_key = session.scalars(
        select(Service.id).where(
            Service.router_id == router_id,
            Service.connection_type == ConnectionType.PPPOE,
            Service.state != ServiceState.TERMINATED,
        )
    ).first()
    box = SecretBox(settings.security.fernet_keys()) if needs_key is not None else None
    return _compile(settings, _records(session, router_id, box))


def _scoped_state(
    session: Session, settings: ReconcileSettings, router: Router, services: tuple[int, ...]
) -> tuple[DesiredState, Scope]:
    """The desired state of ``services`` alone (whatever their state) and the :class:`Scope` of their keys.

    A terminated service adds its key to the scope but nothing to the desired state: its entries are removed.
    """
    rows = session.scalars(select(Service).where(Service.id.in_(services)).order_by(Service.id)).all()
    by_id = {row.id: row for row in rows}
    for service_id in services:
        row = by_id.get(service_id)
        if row is None:
            raise NotFound(f"service {service_id} not found")
        if row.router_id != router.id:
            raise Invalid(f"service {service_id} is on router {row.router.name!r}, not {router.name!r}")
    needs_key = any(
        row.connection_type is ConnectionType.PPPOE and row.state is not ServiceState.TERMINATED for row in rows
    )
    box = SecretBox(settings.security.fernet_keys()) if needs_key else None
    records = [_record_of(row, box) for row in rows]
    desired = _compile(settings, records)
    return desired, Scope.of(desired, (subscriber_key(record) for record in records))


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


def _load(session: Session, settings: ReconcileSettings, name: str, services: tuple[int, ...] | None = None) -> _Loaded:
    router = session.scalars(select(Router).where(Router.name == name)).one_or_none()
    if router is None:
        raise NotFound(f"router {name!r} is not in the database (run edgebill init to add configured routers)")
    if router.retired_at is not None:
        raise Conflict(f"router {name!r} is retired (no longer in the configuration)")
    # The queue is read before the services. Under READ COMMITTED every statement sees what was committed when
    # it began, so a change committed between the two reads is then either missing from both (its operation stays
    # pending and triggers the next run) or visible in the services; never an operation marked done whose change
    # this run did not see. A scoped run takes only the operations of its services: the others wait for theirs.
    query = select(RouterOp).where(RouterOp.router_id == router.id, RouterOp.status == RouterOpStatus.PENDING)
    if services is not None:
        query = query.where(RouterOp.service_id.in_(services))
    pending = session.scalars(query.order_by(RouterOp.id)).all()
    snapshot = tuple(
        _Op(row.id, row.op, row.service_id, str(row.payload.get("key")) if row.payload.get("key") else None)
        for row in pending
    )
    if services is None:
        return _Loaded(router.id, desired_state(session, settings, router.id), snapshot)
    desired, scope = _scoped_state(session, settings, router, services)
    return _Loaded(router.id, desired, snapshot, services, scope)


# --- one router ------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What happened on the router, filled in as the run goes."""

    plan: ChangeSet | None = None
    applied: list[str] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    done_ops: list[int] = field(default_factory=list)
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
        params = _router_params(settings, router_name)
        with session_factory.begin() as session:
            loaded = _load(session, settings, router_name, scoped)
    except (ServiceError, ProvisioningError, SecretError) as exc:
        log.warning("reconcile %s: %s", router_name, exc)
        return ReconcileReport(router_name, dry_run, started, utcnow(), error=str(exc), scope=scoped)

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
                    loaded = _load(session, settings, router_name)
                run.facts = _facts(router)
                run.plan = router.plan(loaded.desired, router.read_state())
            if not dry_run:
                _apply(router, run.plan, loaded.ops, run)
                if run.applied:  # read back what the router now holds; nothing written, nothing to confirm
                    run.residual = _residual(router, loaded)
    except ApplyError as exc:
        run.applied.extend(c.describe() for c in exc.applied)
        run.error = exc
    except DriverError as exc:
        run.error = exc
    except (ServiceError, ProvisioningError, SecretError) as exc:  # loading the full run after a fallback
        log.warning("reconcile %s: %s", router_name, exc)
        return ReconcileReport(router_name, dry_run, started, utcnow(), error=str(exc))

    plan = run.plan or ChangeSet()
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
        conflicts=tuple(f"{c.kind} {c.key}: {c.reason}" for c in plan.conflicts),
        applied=tuple(run.applied),
        disconnected=tuple(run.disconnected),
        drift=drift and not dry_run,
        ops_done=len(run.done_ops),
        ops_pending=0 if dry_run else len(loaded.ops) - len(run.done_ops),
        residual=run.residual,
        error=str(run.error) if run.error else None,
        scope=loaded.services,
    )
    if report.error:
        log.warning("reconcile %s", report.summary())
    elif report.residual:
        log.warning("reconcile %s: the router still differs after apply; it may spell a value differently", router_name)
    return report


def _residual(router: Driver, loaded: _Loaded) -> int:
    """How many changes a plan against a fresh read still finds (zero once the router holds what was written)."""
    try:
        return len(router.plan(loaded.desired, router.read_state(loaded.scope), loaded.scope).changes)
    except ScopeUnavailable as exc:  # the writes are done; the next full run confirms them
        log.info("cannot confirm the scoped run: %s", exc)
        return 0


def _facts(router: Driver) -> tuple[str, str, str]:
    facts = router.facts()
    return facts.identity, facts.version, facts.model


def _apply(router: Driver, plan: ChangeSet, pending: Sequence[_Op], run: _Run) -> None:
    """Write the plan, then the exactly-once operations in queue order; record each success in ``run``."""
    if plan.changes or plan.disconnect:
        result = router.apply(plan)
        run.applied.extend(c.describe() for c in result.applied)
        run.disconnected.extend(result.disconnected)
    dropped = set(run.disconnected) | set(plan.disconnect)
    for op in pending:
        if op.op == RECONCILE:
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


def _record(session: Session, loaded: _Loaded, name: str, plan: ChangeSet, run: _Run, drift: bool) -> None:
    row = session.get(Router, loaded.router_id)
    if row is None:  # deleted meanwhile: nothing to record against
        return
    now = utcnow()
    if run.facts is not None:
        row.status = RouterStatus.UP
        row.last_seen_at = now
        row.identity, row.version, row.model = run.facts
    elif run.error is not None:
        row.status = RouterStatus.DOWN
    if run.error is None:
        row.last_sync_at = now
        row.last_error = None
    else:
        row.last_error = str(run.error)[:2000]
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
    for op in loaded.ops:
        if op.id in done:
            ops.mark_done(session, op.id)
        elif run.error is not None and op.op in (RECONCILE, DISCONNECT):
            current = session.get(RouterOp, op.id)
            attempts = (current.attempts if current is not None else 0) + 1
            ops.mark_failed(session, op.id, str(run.error), retry_in=retry_delay(attempts))


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


# --- service state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStateChange:
    """The outcome of :func:`set_service_state`; ``changed`` is False when the service was already there."""

    service_id: int
    before: str
    after: str
    reason: str | None
    changed: bool
    ops: tuple[int, ...] = ()

    def to_json(self) -> JsonDict:
        return {
            "service_id": self.service_id,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "changed": self.changed,
            "ops": list(self.ops),
        }


def _state_view(row: Service) -> JsonDict:
    return {
        "id": row.id,
        "state": row.state.value,
        "state_reason": row.state_reason,
        "state_since": row.state_since.isoformat() if row.state_since else None,
    }


def set_service_state(
    session: Session, actor: str, service_id: int, state: str | ServiceState, reason: str | None = None
) -> ServiceStateChange:
    """Throttle, suspend, resume or terminate a service, in the caller's transaction.

    ``state`` is a state (``throttled``...) or its verb (``throttle``, ``suspend``, ``resume``,
    ``terminate``). Records the audit entry, queues a reconcile of the service's router and, for a PPPoE
    service, a disconnect of its session so that the new state takes effect now. Setting the state a service
    already has changes nothing. A terminated service cannot change state again.
    """
    try:
        target = STATE_ACTIONS[state] if isinstance(state, str) and state in STATE_ACTIONS else ServiceState(state)
    except ValueError:
        choices = ", ".join([*STATE_ACTIONS, *(s.value for s in ServiceState)])
        raise Invalid(f"invalid service state {state!r}: expected one of {choices}") from None
    if reason is not None:
        reason = reason.strip() or None
        if reason is not None and (len(reason) > 500 or any(ord(ch) < 32 for ch in reason)):
            raise Invalid("reason must be one line of at most 500 characters")
    row = session.get(Service, service_id)
    if row is None:
        raise NotFound(f"service {service_id} not found")
    before = row.state
    if before is target:
        return ServiceStateChange(service_id, before.value, target.value, row.state_reason, changed=False)
    if before is ServiceState.TERMINATED:
        raise Conflict(f"service {service_id} is terminated; its state cannot change")
    view_before = _state_view(row)
    now = utcnow()
    row.state = target
    row.state_reason = reason
    row.state_since = now
    if target is ServiceState.TERMINATED:
        row.terminated_at = now
    session.flush()
    audit.record(session, actor, f"service.{target.value}", "service", view_before, _state_view(row))
    queued = [ops.enqueue_reconcile(session, row.router_id, reason=f"service.{target.value}", service_id=row.id).id]
    if row.connection_type is ConnectionType.PPPOE and row.pppoe_login:
        queued.append(
            ops.enqueue(
                session,
                row.router_id,
                DISCONNECT,
                {"key": row.pppoe_login, "reason": f"service.{target.value}"},
                service_id=row.id,
            ).id
        )
    log.info("service %s: %s -> %s by %s", service_id, before.value, target.value, actor)
    return ServiceStateChange(service_id, before.value, target.value, reason, changed=True, ops=tuple(queued))
