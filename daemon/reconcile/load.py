"""What a reconcile run works from: a router's queued operations and the desired state of its services.

:func:`load` reads, through the service layer and in the caller's transaction, the router's pending
``router_ops`` and then its services (PPPoE passwords decrypted), and compiles the desired state with
:func:`policies.provisioning.compile_desired`. A scoped load takes only the named services, whatever their
state, and only their operations, and says which entries they own (:class:`drivers.models.Scope`).

:class:`ReconcileSettings` is what the engine reads of the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol

from sqlalchemy.orm import Session

from daemon.db.models import Service
from daemon.security import SecretBox, SecretError
from daemon.services import ops, routers
from daemon.services import services as subs
from daemon.services.errors import Conflict, Invalid, NotFound
from drivers.base import RouterParams
from drivers.models import Scope
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ServiceState
from policies.provisioning import DEFAULT_THROTTLE_RATE, ServiceRecord, compile_desired, subscriber_key
from policies.rates import Burst, RateLimit

__all__ = [
    "Loaded",
    "QueuedOp",
    "ReconcileSettings",
    "RouterConfig",
    "desired_state",
    "enforcement_of",
    "load",
    "router_params",
    "throttle_rate_of",
]

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


class RouterConfig(RouterParams, Protocol):
    """A configured router: what its driver reads, and the check of the secret file it logs in with."""

    def check_secrets(self) -> None: ...


class ReconcileSettings(Protocol):
    """What the engine reads of the settings (``daemon.config.Settings`` satisfies it)."""

    @property
    def routers(self) -> Sequence[RouterConfig]: ...
    @property
    def dunning(self) -> Sequence[_DunningStep]: ...
    @property
    def enforcement(self) -> _Enforcement: ...
    @property
    def security(self) -> _Security: ...


def router_params(settings: ReconcileSettings, name: str) -> RouterConfig:
    """The configured router called ``name``; NotFound lists the configured ones."""
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


# --- loading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedOp:
    """A pending ``router_ops`` row as the run snapshot it; ``key`` is the session a ``disconnect`` names."""

    id: int
    op: str
    service_id: int | None
    key: str | None


@dataclass(frozen=True)
class Loaded:
    """What one run works from. ``services`` and ``scope`` are set for a scoped run, None for a full one."""

    router_id: int
    desired: DesiredState
    ops: tuple[QueuedOp, ...]
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


def _compile(settings: ReconcileSettings, records: Sequence[ServiceRecord]) -> DesiredState:
    return compile_desired(records, throttle_rate=throttle_rate_of(settings), enforcement=enforcement_of(settings))


def desired_state(session: Session, settings: ReconcileSettings, router_id: int) -> DesiredState:
    """The desired state of one router, compiled from its services in the database."""
    box = SecretBox(settings.security.fernet_keys()) if subs.router_has_pppoe(session, router_id) else None
    return _compile(settings, [_record_of(row, box) for row in subs.live_on_router(session, router_id)])


def _scoped_state(
    session: Session, settings: ReconcileSettings, router_id: int, router_name: str, services: tuple[int, ...]
) -> tuple[DesiredState, Scope]:
    """The desired state of ``services`` alone (whatever their state) and the :class:`Scope` of their keys.

    A terminated service adds its key to the scope but nothing to the desired state: its entries are removed.
    """
    rows = subs.rows_by_id(session, services)
    by_id = {row.id: row for row in rows}
    for service_id in services:
        row = by_id.get(service_id)
        if row is None:
            raise NotFound(f"service {service_id} not found")
        if row.router_id != router_id:
            raise Invalid(f"service {service_id} is on router {row.router.name!r}, not {router_name!r}")
    needs_key = any(
        row.connection_type is ConnectionType.PPPOE and row.state is not ServiceState.TERMINATED for row in rows
    )
    box = SecretBox(settings.security.fernet_keys()) if needs_key else None
    records = [_record_of(row, box) for row in rows]
    desired = _compile(settings, records)
    # A PPPoE service without a login has no key: it is refused by the desired state, and has nothing to remove.
    keys = (subscriber_key(r) for r in records if r.connection is not ConnectionType.PPPOE or r.login)
    return desired, Scope.of(desired, keys)


def load(session: Session, settings: ReconcileSettings, name: str, services: tuple[int, ...] | None = None) -> Loaded:
    """What a run of router ``name`` works from (all of it, or ``services`` alone), in the caller's transaction."""
    router = routers.find_router(session, name)
    if router is None:
        raise NotFound(f"router {name!r} is not in the database (run edgebill init to add configured routers)")
    if router.retired_at is not None:
        raise Conflict(f"router {name!r} is retired (no longer in the configuration)")
    # The queue is read before the services. Under READ COMMITTED every statement sees what was committed when
    # it began, so a change committed between the two reads is then either missing from both (its operation stays
    # pending and triggers the next run) or visible in the services; never an operation marked done whose change
    # this run did not see. A scoped run takes only the operations of its services: the others wait for theirs.
    pending = ops.pending_ops(session, router.id, services=services)
    snapshot = tuple(
        QueuedOp(row.id, row.op, row.service_id, str(row.payload.get("key")) if row.payload.get("key") else None)
        for row in pending
    )
    if services is None:
        return Loaded(router.id, desired_state(session, settings, router.id), snapshot)
    desired, scope = _scoped_state(session, settings, router.id, router.name, services)
    return Loaded(router.id, desired, snapshot, services, scope)
