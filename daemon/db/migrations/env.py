"""Alembic environment for edgebill.

The connection comes from ``config.attributes["connection"]`` when called through :func:`daemon.db.upgrade`;
otherwise from the ``sqlalchemy.url`` option or the ``EDGEBILL_DATABASE_URL`` environment variable.
SQLite changes are rendered in batch mode, so later ``ALTER`` migrations work there too.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from daemon.db.engine import make_engine
from daemon.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("EDGEBILL_DATABASE_URL")
    if not url:
        raise SystemExit("no database: set EDGEBILL_DATABASE_URL or pass -x/sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
_run_online()
