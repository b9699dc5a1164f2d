"""Service state changes made by billing, through :func:`daemon.reconcile.set_service_state`.

That function records the audit entry and queues the router work in the caller's transaction. It leaves a
service alone when it already has the state asked for; when only the cause changes (a service suspended by
dunning whose prepaid period has also ended), :func:`set_state` records the new reason itself, with its own
audit entry, so the dashboard always says why.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from daemon.db.models import Service
from daemon.reconcile import set_service_state
from daemon.services import audit
from daemon.services.errors import NotFound

__all__ = ["set_state"]

log = logging.getLogger(__name__)

_MAX_REASON = 500


def set_state(session: Session, actor: str, service_id: int, state: str, reason: str) -> None:
    """Put a service in ``state`` (active, throttled, suspended, terminated) for ``reason``, in the caller's
    transaction, with its audit entry and router work."""
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
