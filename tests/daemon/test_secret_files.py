"""Secret files that go bad while the daemon runs: a per-router error naming the file and the fix, never a traceback.

The configuration is checked when it is loaded; these files are read again at run time (a router's password or
SSH key, the data encryption key, the SMTP password), and an administrator may move, empty or chmod them while
the daemon runs. The run then stops for that router only, its ``last_error`` and the reconcile report say which
file and what to do, and its queued operations wait; the other routers carry on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from daemon import reconcile
from daemon.billing.mail import MailError, SmtpMailer
from daemon.config import ConfigError, RouterSettings, Settings, SmtpSettings, load_settings
from daemon.db import Router, RouterOp, RouterOpStatus, Service, session_factory, upgrade
from daemon.scheduler import Daemon
from daemon.security import SecretBox
from daemon.services import services
from lab.routeros import RouterOSEmulator
from tests.daemon.conftest import ROUTER_PASSWORD, secret
from tests.lab_setup import seed_subscriber, write_secret
from tests.support import wait_for
from web import create_app

OPEN = "is accessible to all users (mode 0644); run chmod o-rwx on it"
GONE = "no such file; restore it, or correct the path in the configuration and restart"


@pytest.fixture
def second_router() -> Iterator[RouterOSEmulator]:
    with RouterOSEmulator(users={"edgebill": ROUTER_PASSWORD}, default_remote_range="100.64.1.0/24") as emu:
        yield emu


@pytest.fixture
def setup(
    router: RouterOSEmulator,
    second_router: RouterOSEmulator,
    engine: Engine,
    db_url: str,
    make_config: Callable[..., Path],
    tmp_path: Path,
) -> tuple[Settings, sessionmaker[Session], int]:
    """Routers ``core1`` (with service ``ada``) and ``core2`` (its own password file), reconciled every second."""
    core2_password = write_secret(tmp_path / "core2.password", ROUTER_PASSWORD)
    config = make_config(
        database_url=db_url,
        routers=[
            {"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": router.port, "timeout": "5s"},
            {
                "name": "core2",
                "kind": "mikrotik",
                "host": "127.0.0.1",
                "port": second_router.port,
                "timeout": "5s",
                "password_file": str(core2_password),
            },
        ],
    )
    loaded = load_settings(config)
    fast = dataclasses.replace(loaded.scheduler, reconcile_interval=timedelta(seconds=1))
    settings = dataclasses.replace(loaded, scheduler=fast)
    upgrade(engine)
    sessions = session_factory(engine)
    return settings, sessions, seed_subscriber(sessions, settings)


def last_error(sessions: sessionmaker[Session], name: str) -> str | None:
    with sessions() as s:
        return s.scalars(select(Router.last_error).where(Router.name == name)).one()


def test_a_file_chmod_ed_or_deleted_while_the_daemon_runs_stops_that_router_only(
    router: RouterOSEmulator,
    setup: tuple[Settings, sessionmaker[Session], int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, sessions, _ = setup
    core2_password = tmp_path / "core2.password"
    data_key = settings.security.secret_key_file
    box = SecretBox(settings.security.fernet_keys())
    daemon = Daemon(settings, sessions)
    daemon.start()
    try:
        wait_for(lambda: secret(router, "ada") is not None, "ada pushed to core1")
        wait_for(lambda: last_error(sessions, "core2") is None and last_error(sessions, "core1") is None, "both up")

        # core2's password file opened to everyone: core2 says so, core1 goes on taking new services.
        core2_password.chmod(0o644)
        wanted = f'{core2_password}: password of router "core2": {OPEN}'
        wait_for(lambda: last_error(sessions, "core2") == wanted, "core2's error naming its password file")
        add_pppoe(sessions, box, "bob")
        wait_for(lambda: secret(router, "bob") is not None, "bob pushed to core1 meanwhile")
        assert last_error(sessions, "core1") is None

        # The data key deleted: core1 (which has PPPoE passwords to decrypt) says so; its queued work waits.
        data_key.rename(tmp_path / "data.key.moved")
        wanted = f"{data_key}: data encryption key: {GONE}"
        wait_for(lambda: last_error(sessions, "core1") == wanted, "core1's error naming the data key")
        add_pppoe(sessions, box, "carol")
        wait_for(lambda: pending_with_error(sessions, wanted), "the queued operation failed with the same error")
        assert secret(router, "carol") is None

        # Both fixed: both routers recover by themselves, the queued work is done.
        (tmp_path / "data.key.moved").rename(data_key)
        core2_password.chmod(0o600)
        wait_for(lambda: last_error(sessions, "core1") is None and last_error(sessions, "core2") is None, "recovery")
        wait_for(lambda: secret(router, "carol") is not None, "the queued service pushed")
    finally:
        daemon.stop()
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    logged = f'reconcile core2: {core2_password}: password of router "core2": {OPEN}'
    assert any(r.getMessage() == logged for r in caplog.records)


def add_pppoe(sessions: sessionmaker[Session], box: SecretBox, login: str) -> None:
    """A new PPPoE service on core1, as the dashboard adds one."""
    with sessions.begin() as s:
        customer_id = s.scalars(select(Service.customer_id)).first()
        assert customer_id is not None
        services.add_service(
            s,
            "test",
            box,
            customer_id=customer_id,
            plan_name="home-10",
            router_name="core1",
            started_on=date(2026, 1, 1),
            pppoe_login=login,
            pppoe_password=f"{login}-pw",
        )


def pending_with_error(sessions: sessionmaker[Session], error: str) -> bool:
    with sessions() as s:
        rows = s.scalars(select(RouterOp).where(RouterOp.status == RouterOpStatus.PENDING)).all()
        return bool(rows) and all(row.last_error == error and row.attempts >= 1 for row in rows)


# -- each secret file read at run time -------------------------------------------------------------------------


def _break(path: Path, how: str) -> None:
    if how == "chmod 0644":
        path.chmod(0o644)
    elif how == "deleted":
        path.unlink()
    elif how == "a directory":
        path.unlink()
        path.mkdir(mode=0o700)
    else:
        write_secret(path, "")  # the file holds one newline: empty once it is stripped


BROKEN = {
    "chmod 0644": OPEN,
    "deleted": GONE,
    "a directory": "not a regular file; put the secret in a regular file at that path",
}


@pytest.mark.parametrize("how", sorted(BROKEN))
@pytest.mark.parametrize("which", ["password", "ssh key", "data key"])
def test_a_router_run_names_the_file_and_the_fix(
    setup: tuple[Settings, sessionmaker[Session], int], tmp_path: Path, which: str, how: str
) -> None:
    settings, sessions, _ = setup
    if which == "ssh key":  # checked before any connection: no gateway is needed to see the error
        key = write_secret(tmp_path / "gw.key", "-----BEGIN OPENSSH PRIVATE KEY-----")
        gateway = RouterSettings(
            name="core1", kind="linux", host="127.0.0.1", port=1, username="root", ssh_key_file=key, interface="eth1"
        )
        settings = dataclasses.replace(settings, routers=(gateway,))
        path, what = key, 'SSH key of router "core1"'
    elif which == "password":
        path, what = settings.router("core1").password_file or Path(), 'password of router "core1"'
    else:
        path, what = settings.security.secret_key_file, "data encryption key"
    _break(path, how)

    report = reconcile.reconcile_router(sessions, settings, "core1")

    assert report.error == f"{path}: {what}: {BROKEN[how]}"
    assert last_error(sessions, "core1") == report.error
    assert pending_with_error(sessions, report.error)
    dry = reconcile.reconcile_router(sessions, settings, "core1", dry_run=True)
    assert dry.error == report.error


def test_an_empty_data_key_or_router_password(setup: tuple[Settings, sessionmaker[Session], int]) -> None:
    settings, sessions, _ = setup
    write_secret(settings.security.secret_key_file, "# rotated")
    report = reconcile.reconcile_router(sessions, settings, "core1")
    assert report.error == f"{settings.security.secret_key_file}: data encryption key: holds no Fernet key"
    password_file = settings.router("core2").password_file
    assert password_file is not None
    write_secret(password_file, "")
    report = reconcile.reconcile_router(sessions, settings, "core2")
    assert report.error == f'{password_file}: password of router "core2": is empty'
    assert last_error(sessions, "core2") == report.error


def test_the_smtp_password_file_gone_is_a_mail_error(tmp_path: Path) -> None:
    password = write_secret(tmp_path / "smtp.password", "pw")
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=1, username="billing", password_file=password))
    password.chmod(0o604)
    with pytest.raises(MailError) as info:
        mailer.send(EmailMessage())
    assert str(info.value) == (
        f"cannot send mail: {password}: SMTP password: is accessible to all users (mode 0604); run chmod o-rwx on it"
    )


def test_the_web_session_key_is_checked_like_the_others(config_file: Path) -> None:
    settings = load_settings(config_file)
    settings.web.secret_key_file.chmod(0o640)
    create_app(settings)  # group-readable is allowed (with a warning)
    settings.web.secret_key_file.unlink()
    with pytest.raises(ConfigError) as info:
        create_app(settings)
    assert str(info.value) == f"{settings.web.secret_key_file}: web secret key: {GONE}"
