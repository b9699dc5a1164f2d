"""Per-request access to what the application factory set up: the settings, a database session, today's date.

Blueprints and template filters import this module, never the :mod:`web` package itself, so the factory in
``web/__init__.py`` can import the blueprints at the top without a cycle.
"""

from __future__ import annotations

from datetime import date

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.db.models import utcnow

SETTINGS_KEY = "edgebill.settings"
SESSIONS_KEY = "edgebill.sessions"


def settings() -> Settings:
    value: Settings = current_app.extensions[SETTINGS_KEY]
    return value


def db() -> Session:
    """The request's session, opened on first use and closed at teardown (:func:`close_db`)."""
    if "db" not in g:
        factory: sessionmaker[Session] = current_app.extensions[SESSIONS_KEY]
        g.db = factory()
    session: Session = g.db
    return session


def close_db(exc: BaseException | None) -> None:
    """Close the request's session, if one was opened, rolling it back first when the request failed."""
    session: Session | None = g.pop("db", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()


def today() -> date:
    """Today in the billing time zone."""
    return utcnow().astimezone(settings().billing.timezone).date()
