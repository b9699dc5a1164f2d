"""A read-only or unreachable database: reads keep working, changes answer 503 saying why, never a 500.

Read-only on SQLite is a read-only connection (``mode=ro``: the tests run as root, whom file modes do not stop);
on PostgreSQL it is ``default_transaction_read_only`` set on the test database. Unreachable is a missing SQLite
folder, or a PostgreSQL port nobody listens on.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from daemon.cli import main
from daemon.db import ApiToken, Payment, User, make_engine, session_factory
from daemon.db import errors as db_errors
from tests.conftest import pg_url, read_only_url
from tests.support import require
from tests.web.conftest import ADMIN_PASSWORD, Seeded, csrf_of
from web import create_app

READ_ONLY = "the database is read-only: "
UNAVAILABLE = "the database is unavailable: "


@pytest.fixture
def ro_url(seeded: Seeded, engine: Engine, db_url: str) -> Iterator[str]:
    """The URL of the seeded database, for connections that can only read."""
    engine.dispose()
    yield from read_only_url(db_url)


@pytest.fixture
def read_only(ro_url: str) -> Iterator[Engine]:
    """An engine on the seeded database that can only read."""
    ro = make_engine(ro_url)
    try:
        yield ro
    finally:
        ro.dispose()


@pytest.fixture
def ro_client(seeded: Seeded, read_only: Engine) -> FlaskClient:
    app = create_app(seeded.settings, sessions=session_factory(read_only), test_config={"TESTING": True})
    return app.test_client()


def sign_in(client: FlaskClient) -> None:
    response = client.post("/login", data={"csrf": csrf_of(client), "username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


def counts(seeded: Seeded) -> tuple[int, int, object, object]:
    with seeded.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(Payment)) or 0,
            s.scalar(select(func.count()).select_from(User)) or 0,
            s.scalar(select(User.last_login_at).where(User.username == "admin")),
            s.scalar(select(ApiToken.last_used_at)),
        )


def test_a_read_only_database_serves_reads_and_refuses_changes_with_503(
    ro_client: FlaskClient, seeded: Seeded, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_errors, "_warned", set())  # as in a new process
    before = counts(seeded)
    with caplog.at_level(logging.WARNING):
        sign_in(ro_client)
        for path in ("/", "/customers", f"/customers/{seeded.customer_id}", "/services", "/plans", "/routers"):
            assert ro_client.get(path).status_code == 200, path
        for path in ("/api/v1/services", f"/api/v1/customers/{seeded.customer_id}", "/api/v1/routers"):
            for _ in range(2):
                assert ro_client.get(path, headers={"Authorization": f"Bearer {seeded.token}"}).status_code == 200

        page = ro_client.post(
            f"/customers/{seeded.customer_id}/payments",
            data={"csrf": csrf_of(ro_client, "/"), "amount": "10.00", "method": "cash"},
        )
        assert page.status_code == 503
        assert READ_ONLY in page.get_data(as_text=True) and "Nothing was changed" in page.get_data(as_text=True)

    assert counts(seeded) == before  # nothing written, not even the last-use times
    skipped = [m for m in caplog.messages if "is not recorded: the database is read-only" in m]
    assert len(skipped) == 2, skipped  # once for sign-ins, once for tokens, however many requests
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]


def edgebill(*argv: str, drop_privileges: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a process of its own; with ``drop_privileges``, as root without the capabilities that
    let root write to any file, so that a 0400 file is read-only to it as to any owner."""
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"] if drop_privileges else []
    code = "import sys; from daemon.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([*prefix, sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False)


def test_a_read_only_database_makes_cli_changes_one_line(seeded: Seeded, engine: Engine, db_url: str) -> None:
    config = str(seeded.settings.path)
    engine.dispose()
    url = make_url(db_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:  # a database file the service user may only read
        require(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
        Path(str(url.database)).chmod(0o400)
    for _ in read_only_url(db_url) if not sqlite else [None]:
        listed = edgebill("--config", config, "customer", "list", drop_privileges=sqlite)
        assert listed.returncode == 0 and "Ada Lovelace" in listed.stdout, listed.stderr
        added = edgebill("--config", config, "customer", "add", "Grace Hopper", drop_privileges=sqlite)
        assert added.returncode == 1 and added.stdout == ""
        assert added.stderr.startswith(f"edgebill: error: {READ_ONLY}") and added.stderr.count("\n") == 1, added.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def down_url(request: pytest.FixtureRequest, seeded: Seeded) -> str:
    """A database URL where nothing answers: a missing SQLite folder, a PostgreSQL port nobody listens on."""
    if request.param == "sqlite":
        return f"sqlite:///{seeded.settings.path.parent / 'gone' / 'edgebill.db'}"
    return pg_url("edgebill_nowhere").replace(f":{make_url(pg_url('x')).port}/", f":{closed_port()}/")


@pytest.fixture
def down_app(seeded: Seeded, down_url: str) -> Iterator[Flask]:
    down = make_engine(down_url)
    try:
        yield create_app(seeded.settings, sessions=session_factory(down), test_config={"TESTING": True})
    finally:
        down.dispose()


def test_an_unreachable_database_is_one_line_from_the_cli(
    seeded: Seeded, down_url: str, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = seeded.settings.path
    path.write_text(path.read_text(encoding="utf-8").replace(db_url, down_url), encoding="utf-8")
    assert main(["--config", str(path), "customer", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edgebill: error: {UNAVAILABLE}") and err.count("\n") == 1, err


def test_an_unreachable_database_is_a_503_with_one_clear_line(down_app: Flask, seeded: Seeded) -> None:
    client = down_app.test_client()
    assert client.get("/login").status_code == 200  # nothing to read: the form still shows
    page = client.post("/login", data={"csrf": csrf_of(client), "username": "admin", "password": ADMIN_PASSWORD})
    assert page.status_code == 503
    assert UNAVAILABLE in page.get_data(as_text=True)
    api = client.get("/api/v1/services", headers={"Authorization": f"Bearer {seeded.token}"})
    assert api.status_code == 503
    body = api.get_json()
    assert body["error"] == "database_unavailable" and body["message"].startswith(UNAVAILABLE)
    assert "\n" not in body["message"]


def test_a_secret_file_gone_at_run_time_is_a_503_that_names_no_file(
    app: Flask, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever view reads a key file at run time (the data key, to encrypt a PPPoE password) answers the same."""
    key_file = seeded.settings.security.secret_key_file

    def encrypting_view() -> str:
        seeded.settings.security.fernet_keys()
        return "unreachable"

    app.add_url_rule("/test/encrypt", view_func=encrypting_view)
    app.add_url_rule("/api/v1/test/encrypt", endpoint="api_encrypt", view_func=encrypting_view)
    key_file.chmod(0o644)
    client = app.test_client()
    page = client.get("/test/encrypt")
    assert page.status_code == 503
    assert str(key_file) not in page.get_data(as_text=True)
    assert "the administrator will find which file" in page.get_data(as_text=True).lower()
    api = client.get("/api/v1/test/encrypt", headers={"Authorization": f"Bearer {seeded.token}"})
    assert (api.status_code, api.get_json()["error"]) == (503, "server_misconfigured")
    fix = "is accessible to all users (mode 0644); run chmod o-rwx on it"
    assert f"GET /test/encrypt: {key_file}: data encryption key: {fix}" in caplog.messages
