"""The audit log: who changed what, with the entity's JSON view before and after."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.db.models import AuditEntry
from daemon.services import _validate as check

__all__ = ["AuditRecord", "list_entries", "record", "views_after"]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: JsonDict | None
    after: JsonDict | None

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "before": self.before,
            "after": self.after,
        }


def _record_of(row: AuditEntry) -> AuditRecord:
    return AuditRecord(row.id, row.at, row.actor, row.action, row.entity, row.entity_id, row.before, row.after)


def record(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    before: JsonDict | None,
    after: JsonDict | None,
    *,
    entity_id: int | str | None = None,
) -> AuditRecord:
    """Append an audit entry in the caller's transaction.

    ``before``/``after`` are the entity's JSON views (``None`` when it did not or no longer exists); they must
    never hold secrets. ``entity_id`` defaults to the ``id`` of ``after`` (or ``before``).
    """
    who = check.actor(actor)
    if entity_id is None:
        for view in (after, before):
            if view is not None and view.get("id") is not None:
                entity_id = view["id"]
                break
    row = AuditEntry(
        actor=who,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
    )
    session.add(row)
    session.flush()
    log.info("audit: %s %s %s %s", who, action, entity, row.entity_id)
    return _record_of(row)


def views_after(session: Session, action: str, entity: str, entity_id: int | str) -> list[JsonDict | None]:
    """The ``after`` view of every entry of ``action`` on one entity (what was sent, set or recorded)."""
    query = select(AuditEntry.after).where(
        AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id), AuditEntry.action == action
    )
    return list(session.scalars(query))


def list_entries(
    session: Session, *, entity: str | None = None, entity_id: int | str | None = None, limit: int = 100
) -> list[AuditRecord]:
    """The newest entries first, optionally for one entity (``entity="service", entity_id=12``)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 10_000)))
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == str(entity_id))
    return [_record_of(row) for row in session.scalars(query)]
