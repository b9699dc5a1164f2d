"""Per-request access to the settings and a database session."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings


def settings() -> Settings:
    value: Settings = current_app.extensions["edgebill.settings"]
    return value


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        factory: sessionmaker[Session] = current_app.extensions["edgebill.sessions"]
        g.db = factory()
    session: Session = g.db
    return session
