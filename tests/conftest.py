"""Shared fixtures: databases on both backends, and configuration files.

* ``db_url``: a fresh, empty database, once per backend: an SQLite file under ``tmp_path`` and a new
  PostgreSQL database ``edgebill_test_<random>`` on 127.0.0.1:5432 (user ``postgres``), dropped afterwards.
  Tests marked or parametrized for PostgreSQL skip (fail under ``EDGEBILL_REQUIRE_ALL=1``) when it is down.
* ``postgres_url``: the PostgreSQL half of ``db_url`` alone.
* ``engine``: an engine on ``db_url`` with the schema migrated to the newest revision.
* ``session``: a session on ``engine``; whatever the test leaves uncommitted is rolled back.
* ``make_config``: writes a complete, valid ``edgebill.toml`` (and its key and password files, mode 0600)
  into ``tmp_path`` (:func:`write_config`); ``config_file`` is ``make_config()`` with an SQLite database and
  two routers.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from daemon.db import make_engine, session_factory, upgrade
from tests.support import require

#: The emulated RouterOS fixtures (``emulator``, ``params``) serve the driver, engine and daemon tests alike.
pytest_plugins = ["tests.routeros"]

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_ADMIN_DSN = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=3"


@functools.cache
def postgres_problem() -> str:
    """Why PostgreSQL cannot be used by the tests, or an empty string when it can."""
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL on {PG_HOST}:{PG_PORT} is not usable: {str(exc).strip().splitlines()[0]}"
    return ""


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def create_pg_database() -> str:
    """Create an empty PostgreSQL database with a random name and return it."""
    name = f"edgebill_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_database() -> Iterator[str]:
    problem = postgres_problem()
    require(not problem, problem)
    name = create_pg_database()
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)


def read_only_url(db_url: str) -> Iterator[str]:
    """``db_url`` made read-only while the generator is suspended: a read-only SQLite connection (``mode=ro``;
    the tests run as root, whom file modes do not stop), or ``default_transaction_read_only`` set on the
    PostgreSQL database (reset afterwards)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///file:{url.database}?mode=ro&uri=true"
        return
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
    try:
        yield db_url
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{url.database}" RESET default_transaction_read_only')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL; parametrized over SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'edgebill.db'}"
        return
    yield from _postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database URL, for what only PostgreSQL's concurrency shows (SQLite serialises
    writers against the engine's transactions)."""
    yield from _postgres_database()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` with the schema at the newest revision."""
    eng = make_engine(db_url)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated ``engine``; rolled back and closed after the test."""
    with session_factory(engine)() as sess:
        try:
            yield sess
        finally:
            sess.rollback()


def write_secret(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (what the configuration loader demands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


DEFAULT_ROUTERS: tuple[Mapping[str, Any], ...] = (
    {"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": 18728, "site": "North POP"},
    {"name": "edge2", "kind": "mikrotik", "host": "127.0.0.2", "port": 18728, "site": "South POP"},
)

MakeConfig = Callable[..., Path]


def write_config(
    directory: Path,
    *,
    database_url: str | None = None,
    routers: Sequence[Mapping[str, Any]] = DEFAULT_ROUTERS,
    billing: Mapping[str, Any] | None = None,
    name: str = "edgebill.toml",
    extra: str = "",
) -> Path:
    """Write a valid ``edgebill.toml`` (and its secret files, under ``directory/secrets``) and return its path.

    ``database_url`` defaults to an SQLite file in ``directory``; a mikrotik router without ``password_file``
    gets one; ``billing`` overrides ``currency = "USD"``, ``timezone = "UTC"``; ``extra`` is raw TOML appended.
    The data encryption key is created once per directory and then reused.
    """
    secrets_dir = directory / "secrets"
    web_key = write_secret(secrets_dir / "web.key", secrets.token_hex(32).encode() + b"\n")
    data_key = secrets_dir / "data.key"
    if not data_key.exists():
        write_secret(data_key, Fernet.generate_key() + b"\n")
    router_password = write_secret(secrets_dir / "router.password", b"router-api-password\n")
    url = database_url or f"sqlite:///{directory / 'edgebill.db'}"
    billing_keys: dict[str, Any] = {"currency": "USD", "timezone": "UTC"}
    billing_keys.update(billing or {})
    lines = [
        "[database]",
        f"url = {_toml_str(url)}",
        "",
        "[web]",
        'listen = "127.0.0.1:8080"',
        f"secret_key_file = {_toml_str(str(web_key))}",
        "",
        "[security]",
        f"secret_key_file = {_toml_str(str(data_key))}",
        "",
        "[billing]",
        *(f"{key} = {_toml_value(value)}" for key, value in billing_keys.items()),
    ]
    for router in routers:
        table = dict(router)
        table.setdefault("username", "edgebill")
        if table.get("kind") == "mikrotik":
            table.setdefault("password_file", str(router_password))
        lines += ["", "[[routers]]", *(f"{key} = {_toml_value(value)}" for key, value in table.items())]
    path = directory / name
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """``write_config`` into ``tmp_path``: ``make_config(database_url=db_url)`` and so on."""

    def make(**options: Any) -> Path:
        return write_config(tmp_path, **options)

    return make


@pytest.fixture
def config_file(make_config: MakeConfig) -> Path:
    """A valid configuration: SQLite database under ``tmp_path``, USD in UTC, routers ``core1`` and ``edge2``."""
    return make_config()
