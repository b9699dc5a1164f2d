"""Programmatic schema migrations, using the Alembic scripts shipped in :mod:`daemon.db.migrations`."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from daemon.db.engine import make_engine

__all__ = ["alembic_config", "current_revision", "head_revision", "schema_is_current", "upgrade"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """The Alembic configuration of the shipped migrations (no logging setup, no database yet)."""
    cfg = Config(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    return cfg


def head_revision() -> str:
    """The newest revision the shipped migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, ``None`` for an empty (never migrated) database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_is_current(engine: Engine) -> bool:
    """True when the database is at the newest shipped revision."""
    return current_revision(engine) == head_revision()


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> str:
    """Migrate the database to ``revision`` (the newest by default) and return the revision it is at.

    Each migration runs in a transaction; running it again on an up-to-date database changes nothing.
    """
    own_engine = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if not isinstance(engine_or_url, Engine) else engine_or_url
    try:
        before = current_revision(engine)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        after = current_revision(engine)
        if before != after:
            log.info("database schema migrated from %s to %s", before or "empty", after)
        if after is None:  # pragma: no cover - upgrade to a revision always records it
            raise RuntimeError("migration did not record a revision")
        return after
    finally:
        if own_engine:
            engine.dispose()
