"""Database helpers shared by the service functions."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from daemon.db.models import Base
from daemon.services.errors import Conflict


def insert_unique(session: Session, row: Base, conflict: str) -> None:
    """Insert ``row`` inside a savepoint; a uniqueness race lost to a concurrent writer becomes
    :class:`Conflict` (``conflict`` is its message) and leaves the caller's transaction usable."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc
