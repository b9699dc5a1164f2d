"""Wake-ups: queued router work reaches the router as soon as it is committed, not at the next periodic check."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import load_settings
from daemon.db import Router, RouterKind, make_engine, session_factory
from daemon.scheduler import Daemon, runner
from daemon.scheduler.wakeup import WATCHER_THREAD, JobKick, QueueWatcher, watcher_for
from daemon.services import ops
from daemon.services.state import set_service_state
from lab.routeros import RouterOSEmulator
from tests.conftest import MakeConfig
from tests.daemon.conftest import secret
from tests.lab_setup import seed_subscriber
from tests.support import wait_for

#: Longer than any test here takes: whatever reaches the router did so through a wake-up.
NEVER = 3600

POSTGRES_ONLY = pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WATCHER_THREAD]


def watcher_backends(engine: Engine) -> int:
    """Connections of the watcher to this PostgreSQL database."""
    with engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": WATCHER_THREAD},
        ).scalar_one()
    return int(count)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def wait_rounds(watcher: QueueWatcher, rounds: int = 3) -> None:
    """Wait until the watcher has looked ``rounds`` more times."""
    target = watcher.rounds + rounds
    wait_for(lambda: watcher.rounds >= target, f"{rounds} more rounds of the watcher")


# --- the watcher alone ----------------------------------------------------------------------------------------


def test_a_commit_wakes_the_watcher_once_and_a_rollback_not_at_all(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions.begin() as s:
        core1 = Router(name="core1", kind=RouterKind.MIKROTIK, host="127.0.0.1", port=8728)
        s.add(core1)
    woken = Counter()
    watcher = watcher_for(engine, woken)
    assert watcher is not None
    watcher.start()
    try:
        wait_for(watcher.ready.is_set, "the watcher to watch")

        with sessions() as s:
            ops.enqueue_reconcile(s, core1.id, reason="test.rolled-back")
            s.rollback()
        wait_rounds(watcher)
        assert woken.calls == 0

        with sessions.begin() as s:  # a burst in one transaction
            for n in range(5):
                ops.enqueue_reconcile(s, core1.id, reason=f"test.{n}")
        wait_for(lambda: woken.calls >= 1, "the wake-up for the commit")
        wait_rounds(watcher)
        assert woken.calls == 1
    finally:
        watcher.stop()
    assert not watcher.running and not watcher_threads()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_unreachable_database_is_reported_once_and_the_watcher_still_stops(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'no-such-folder' / 'edgebill.db'}"
        if backend == "sqlite"
        else "postgresql+psycopg://edgebill:hunter2@127.0.0.1:1/edgebill"  # nothing listens on port 1
    )
    engine = make_engine(url)
    caplog.set_level(logging.INFO, logger="daemon.scheduler.wakeup")
    watcher = watcher_for(engine, Counter(), retry_delays=(0.01, 0.05))
    assert watcher is not None
    watcher.start()
    try:
        wait_for(lambda: watcher.failures >= 5, "five failed attempts")
    finally:
        watcher.stop()
        engine.dispose()
    assert not watcher_threads()
    reported = [r for r in caplog.records if r.name == "daemon.scheduler.wakeup" and r.levelno == logging.WARNING]
    assert len(reported) == 1, caplog.text
    assert "cannot watch" in reported[0].getMessage()
    assert "hunter2" not in caplog.text


def test_an_in_memory_database_has_no_watcher() -> None:
    engine = make_engine("sqlite://")
    try:
        assert watcher_for(engine, Counter()) is None
    finally:
        engine.dispose()


# --- the hand-off to the scheduler ----------------------------------------------------------------------------


def test_requests_coalesce_and_one_made_during_a_run_gives_one_more_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    scheduler = BackgroundScheduler(job_defaults=runner.JOB_DEFAULTS, timezone=UTC)
    kick = JobKick(scheduler, "work")
    runs: list[int] = []
    executed: list[int] = []
    first_may_end = threading.Event()

    def body() -> None:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            first_may_end.wait(30)

    def on_executed(event: JobExecutionEvent) -> None:
        executed.append(1)

    scheduler.add_job(lambda: kick.run(body), IntervalTrigger(seconds=NEVER), id="work")
    scheduler.add_listener(on_executed, EVENT_JOB_EXECUTED)
    scheduler.start()
    try:
        for _ in range(50):
            kick.request()
        wait_for(lambda: len(runs) == 1, "the first run")
        for _ in range(50):  # the run may already have read what these requests are about
            kick.request()
        first_may_end.set()
        wait_for(lambda: len(executed) == 2, "one more run")
        assert len(runs) == 2

        kick.request()
        wait_for(lambda: len(executed) == 3, "the run for a later request")
        assert len(runs) == 3
    finally:
        first_may_end.set()
        scheduler.shutdown(wait=True)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


# --- the daemon -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Running:
    daemon: Daemon
    service_id: int
    #: Sessions on an engine of their own, as another process (the dashboard, the CLI) would have.
    elsewhere: sessionmaker[Session]


@pytest.fixture
def running(
    router: RouterOSEmulator, engine: Engine, db_url: str, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Running]:
    """The daemon, with its pending check and full reconcile far in the future, after its first reconcile."""
    monkeypatch.setattr(runner, "PENDING_CHECK_SECONDS", NEVER)
    config = make_config(
        database_url=db_url,
        routers=[{"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": router.port, "timeout": "5s"}],
    )
    loaded = load_settings(config)
    slow = dataclasses.replace(
        loaded.scheduler, reconcile_interval=timedelta(seconds=NEVER), poll_interval=timedelta(seconds=NEVER)
    )
    settings = dataclasses.replace(loaded, scheduler=slow)
    sessions = session_factory(engine)
    svc_id = seed_subscriber(sessions, settings)
    other = make_engine(db_url)
    daemon = Daemon(settings, sessions)
    daemon.start()
    try:
        wait_for(lambda: secret(router, "ada") is not None, "the first reconcile to push the secret")
        watcher = daemon.watcher
        assert watcher is not None
        wait_for(watcher.ready.is_set, "the watcher to watch")
        yield Running(daemon, svc_id, session_factory(other))
    finally:
        daemon.stop()
        other.dispose()


def disabled(router: RouterOSEmulator) -> str | None:
    return (secret(router, "ada") or {}).get("disabled")


def test_a_change_committed_elsewhere_reaches_the_router_without_waiting_for_the_check(
    router: RouterOSEmulator, running: Running, engine: Engine
) -> None:
    with running.elsewhere.begin() as s:
        set_service_state(s, "test", running.service_id, "suspend", "invoice unpaid")
    wait_for(lambda: disabled(router) == "true", "the suspension on the router")

    with running.elsewhere.begin() as s:
        set_service_state(s, "test", running.service_id, "resume", "paid")
    wait_for(lambda: disabled(router) == "false", "the release on the router")

    running.daemon.stop()
    assert running.daemon.watcher is None and not watcher_threads()
    if engine.dialect.name == "postgresql":
        wait_for(lambda: watcher_backends(engine) == 0, "the watcher's connection to close")


@POSTGRES_ONLY
def test_the_watcher_listens_again_after_postgresql_drops_its_connection(
    router: RouterOSEmulator, running: Running, engine: Engine
) -> None:
    watcher = running.daemon.watcher
    assert watcher is not None
    with engine.connect() as conn:
        terminated = (
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": WATCHER_THREAD},
            )
            .scalars()
            .all()
        )
    assert terminated == [True]
    wait_for(lambda: watcher.connections >= 2 and watcher.ready.is_set(), "the watcher to listen again")

    with running.elsewhere.begin() as s:
        set_service_state(s, "test", running.service_id, "suspend", "invoice unpaid")
    wait_for(lambda: disabled(router) == "true", "the suspension on the router")
    assert watcher_backends(engine) == 1
