"""Files edgebill writes that hold secrets or personal data are its owner's only (0600), in folders it makes 0700.

The SQLite database and its ``-wal`` and ``-shm`` files (password hashes, customer data), the keys ``keygen``
writes, the demo's folder, configuration and secrets, invoice PDFs, and the emulator's state file (its users'
passwords) are checked under the common umask 022, which would leave them readable by every user.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from daemon.cli import main
from daemon.config.secrets import write_private
from daemon.db import make_engine, upgrade
from daemon.demo import write_demo_config
from lab.routeros import RouterOSEmulator


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_database_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "edgebill.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as connection:  # the WAL files exist while a connection is open
            connection.execute(text("SELECT count(*) FROM users"))
            files = sorted(tmp_path.iterdir())
            assert [f.name for f in files] == ["edgebill.db", "edgebill.db-shm", "edgebill.db-wal"]
            assert {f.name: mode(f) for f in files} == dict.fromkeys((f.name for f in files), 0o600)
    finally:
        engine.dispose()


def test_an_existing_open_database_is_left_as_it_is_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o644)
    with caplog.at_level(logging.WARNING):
        make_engine(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o644
    assert f"database file {path} is accessible to all users (mode 0644); run chmod o-rwx on it" in caplog.messages


def test_a_database_in_a_missing_folder_is_sqlite_s_own_error(tmp_path: Path) -> None:
    make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}").dispose()
    assert not (tmp_path / "missing").exists()


def test_keygen_makes_private_folders_and_files(tmp_path: Path) -> None:
    data_key = tmp_path / "etc" / "edgebill" / "data.key"
    assert main(["keygen", str(data_key)]) == 0
    web_key = tmp_path / "web" / "web.key"
    assert main(["keygen", "--web", str(web_key)]) == 0
    for key in (data_key, web_key):
        assert mode(key) == 0o600
    for folder in (tmp_path / "etc", tmp_path / "etc" / "edgebill", tmp_path / "web"):
        assert mode(folder) == 0o700


def test_the_demo_s_folder_config_and_secrets_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    config = write_demo_config(data_dir, web_port=8080)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "secrets") == 0o700
    assert mode(config) == 0o600
    assert {f.name: mode(f) for f in (data_dir / "secrets").iterdir()} == {
        "web.key": 0o600,
        "data.key": 0o600,
        "routers.password": 0o600,
    }


def test_write_private_replaces_an_open_file_and_writes_a_device(tmp_path: Path) -> None:
    """What ``invoice pdf -o FILE`` writes with: an existing regular file is made private, a device is written."""
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(b"old and longer")
    pdf.chmod(0o644)
    write_private(pdf, b"%PDF-")
    assert (pdf.read_bytes(), mode(pdf)) == (b"%PDF-", 0o600)
    null = Path(os.devnull)
    before = mode(null)
    write_private(null, b"%PDF-")
    assert mode(null) == before
    with pytest.raises(FileExistsError):
        write_private(pdf, b"x", exclusive=True)


def test_the_emulator_state_file_is_private(tmp_path: Path) -> None:
    state = tmp_path / "lab" / "router.json"
    with RouterOSEmulator(users={"admin": "secret"}, state_file=state) as router:
        router.call("/ppp/secret/add", {"name": "ada", "password": "pppoe-pw"})
        router.flush_state()
    assert mode(state) == 0o600
    assert mode(state.parent) == 0o700
