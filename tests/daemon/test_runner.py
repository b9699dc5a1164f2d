"""The daemon process: its scheduler pushes services to a router, polls counters, and follows state changes."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.db import Router, RouterStatus, UsageSample, make_engine, session_factory
from daemon.scheduler import Daemon
from daemon.services.state import set_service_state
from lab.routeros import RouterOSEmulator
from tests.conftest import read_only_url
from tests.daemon.conftest import secret
from tests.support import wait_for


def test_daemon_pushes_polls_and_follows_a_suspension(
    router: RouterOSEmulator, setup: tuple[Settings, sessionmaker[Session], int]
) -> None:
    settings, sessions, service_id = setup
    daemon = Daemon(settings, sessions)
    daemon.start()
    try:
        wait_for(lambda: secret(router, "ada") is not None, "the PPPoE secret on the router")
        assert secret(router, "ada") is not None and secret(router, "ada")["profile"] == "home-10"  # type: ignore[index]

        def recorded() -> bool:  # the run records the router after its writes, in a transaction of its own
            with sessions() as s:
                core1 = s.scalars(select(Router).where(Router.name == "core1")).one()
                return core1.status is RouterStatus.UP and core1.last_sync_at is not None

        wait_for(recorded, "the run recorded with the router up")

        router.advance(5)  # the subscriber's CPE dials in and moves traffic

        def sampled() -> bool:
            router.advance(1)
            with sessions() as s:
                return (s.scalar(select(func.count()).select_from(UsageSample)) or 0) >= 2

        wait_for(sampled, "two counter readings")
        with sessions() as s:
            samples = s.scalars(select(UsageSample).order_by(UsageSample.id)).all()
            assert all(sample.service_id == service_id for sample in samples)
            assert samples[-1].bytes_in > 0 and samples[-1].delta_in is not None

        # A change made by another process (the CLI, the dashboard) is queued in the database; the daemon
        # notices the queued work and pushes it without waiting for the full reconcile interval.
        slow = dataclasses.replace(settings.scheduler, reconcile_interval=timedelta(hours=1))
        daemon.settings = dataclasses.replace(settings, scheduler=slow)
        daemon.schedule()
        with sessions.begin() as s:
            set_service_state(s, "test", service_id, "suspend", "invoice unpaid")
        wait_for(lambda: (secret(router, "ada") or {}).get("disabled") == "true", "the secret to be disabled")

        with sessions.begin() as s:
            set_service_state(s, "test", service_id, "resume", "paid")
        wait_for(lambda: (secret(router, "ada") or {}).get("disabled") == "false", "the secret to be enabled")
        assert daemon.next_runs().keys() >= {"reconcile", "pending", "poll", "daily"}
    finally:
        daemon.stop()
    assert not daemon.scheduler.running


def test_only_one_daemon_runs_in_a_process(setup: tuple[Settings, sessionmaker[Session], int]) -> None:
    settings, sessions, _ = setup
    first = Daemon(settings, sessions)
    first.start()
    try:
        with pytest.raises(RuntimeError, match="already runs"):
            Daemon(settings, sessions).start()
    finally:
        first.stop()


def test_a_read_only_database_fails_each_job_in_one_line(
    setup: tuple[Settings, sessionmaker[Session], int], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings, _, _ = setup
    wanted = "job reconcile failed: the database is read-only: "
    for url in read_only_url(db_url):
        engine = make_engine(url)
        daemon = Daemon(settings, session_factory(engine))
        try:
            with caplog.at_level(logging.ERROR):
                daemon.start()
                wait_for(lambda: any(m.startswith(wanted) for m in caplog.messages), "the reconcile job's one line")
        finally:
            daemon.stop()
            engine.dispose()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
