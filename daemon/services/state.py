"""Service state: how an admin, the dunning run or billing throttles, suspends, resumes or terminates a service.

:func:`set_service_state` records the change and its audit entry, and queues the reconcile of the service's
router (and, for a PPPoE service, the disconnect of its session) in the same transaction, so the new state
reaches the router even after a crash. :func:`set_state` is billing's way in: it also records a new reason
when only the cause of a state changes (a service suspended by dunning whose prepaid period has also ended), so
the dashboard always says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session

from daemon.db.models import Service, utcnow
from daemon.services import audit, ops
from daemon.services.errors import Conflict, Invalid, NotFound
from policies.desired import ConnectionType, ServiceState

__all__ = ["STATE_ACTIONS", "ServiceStateChange", "set_service_state", "set_state"]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

#: CLI verbs and the states they set.
STATE_ACTIONS: Final[dict[str, ServiceState]] = {
    "throttle": ServiceState.THROTTLED,
    "suspend": ServiceState.SUSPENDED,
    "resume": ServiceState.ACTIVE,
    "terminate": ServiceState.TERMINATED,
}

_MAX_REASON = 500


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
        if reason is not None and (len(reason) > _MAX_REASON or any(ord(ch) < 32 for ch in reason)):
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
                ops.DISCONNECT,
                {"key": row.pppoe_login, "reason": f"service.{target.value}"},
                service_id=row.id,
            ).id
        )
    log.info("service %s: %s -> %s by %s", service_id, before.value, target.value, actor)
    return ServiceStateChange(service_id, before.value, target.value, reason, changed=True, ops=tuple(queued))


def set_state(session: Session, actor: str, service_id: int, state: str, reason: str) -> None:
    """Put a service in ``state`` (active, throttled, suspended, terminated) for ``reason``, in the caller's
    transaction, with its audit entry and router work; billing's form of :func:`set_service_state`.

    ``reason`` is folded onto one line and cut to 500 characters. A service already in ``state`` keeps it, and
    gets ``reason`` recorded (with its own audit entry) when that differs from the one it has.
    """
    text = " ".join(reason.split())[:_MAX_REASON]
    row = session.get(Service, service_id)
    if row is None:
        raise NotFound(f"service {service_id} not found")
    if row.state.value == state:
        if row.state_reason != text:
            before = {"id": service_id, "state": state, "state_reason": row.state_reason}
            row.state_reason = text
            session.flush()
            after = {"id": service_id, "state": state, "state_reason": text}
            audit.record(session, actor, "service.state_reason", "service", before, after)
        return
    set_service_state(session, actor, service_id, state, text)
    log.info("service %s set %s by %s: %s", service_id, state, actor, text)
