"""``edgebill db backup`` and ``db restore``: a round trip on SQLite and PostgreSQL, and the restores refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from daemon.db import make_engine
from daemon.db.migrate import current_revision, head_revision
from tests.conftest import MakeConfig
from tests.daemon.test_cli import Cli, snapshot, write


@pytest.fixture
def cli(db_url: str, make_config: MakeConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[Cli]:
    """An initialised installation with one customer, Ana."""
    runner = Cli(make_config(database_url=db_url), capsys)
    password = write(tmp_path / "admin.pw", "correct horse battery\n")
    assert runner("init", "--admin-password-file", password) == 0, runner.err
    runner.ok("customer", "add", "Ana Lima", "--email", "ana@example.net")
    yield runner


def names(cli: Cli) -> list[str]:
    return [customer["name"] for customer in cli.json("customer", "list")]


def test_backup_and_restore_round_trip(cli: Cli, db_url: str, tmp_path: Path) -> None:
    backup = tmp_path / "edgebill.backup"
    assert cli.ok("db", "backup", str(backup)).startswith(f"backup written to {backup} (")
    assert backup.stat().st_mode & 0o777 == 0o600  # it holds password hashes and encrypted secrets
    before = snapshot(db_url)

    cli.ok("customer", "add", "Bob Ruiz")  # the change the restore takes back
    assert names(cli) == ["Ana Lima", "Bob Ruiz"]

    refused = cli.fails("db", "restore", str(backup))
    assert "holds edgebill's tables" in refused and "--force" in refused
    assert names(cli) == ["Ana Lima", "Bob Ruiz"]

    assert cli.ok("db", "restore", str(backup), "--force") == f"database restored from {backup}\n"
    assert names(cli) == ["Ana Lima"]
    assert snapshot(db_url) == before  # every table as it was: users, routers, audit log...
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    cli.ok("customer", "add", "Bob Ruiz")  # the restored database takes new rows (sequences restored too)
    assert names(cli) == ["Ana Lima", "Bob Ruiz"]


def test_backup_never_overwrites(cli: Cli, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me", encoding="utf-8")
    assert f"{taken} exists" in cli.fails("db", "backup", str(taken))
    assert taken.read_text(encoding="utf-8") == "keep me"
    assert "does not exist" in cli.fails("db", "backup", str(tmp_path / "no" / "such.backup"))
    assert not list(tmp_path.glob(".*.partial"))


def test_restore_refuses_what_is_not_a_backup(cli: Cli, db_url: str, tmp_path: Path) -> None:
    before = snapshot(db_url)
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a backup\n" * 10)
    assert "is not a" in cli.fails("db", "restore", str(junk), "--force")
    assert "no such backup file" in cli.fails("db", "restore", str(tmp_path / "missing"), "--force")
    assert snapshot(db_url) == before


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_restore_refuses_while_others_are_connected(cli: Cli, db_url: str, tmp_path: Path) -> None:
    backup = tmp_path / "edgebill.backup"
    cli.ok("db", "backup", str(backup))
    cli.ok("customer", "add", "Bob Ruiz")
    conninfo = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo):  # a daemon, say
        refused = cli.fails("db", "restore", str(backup), "--force")
    assert "1 other session(s) are connected" in refused
    assert names(cli) == ["Ana Lima", "Bob Ruiz"]
