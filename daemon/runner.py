"""The daemon process: one APScheduler that drives reconciliation, counter polling and the daily runs.

Jobs have explicit ids, are replaced on restart, coalesce missed runs and never overlap themselves. Their
functions live at module level and take names, not objects; they find the running :class:`Daemon` through
:data:`_current`. Coordination with other processes (the web dashboard, the CLI) goes through the database:
they enqueue ``router_ops`` rows, and the daemon picks them up (:func:`pending_job`) as soon as they are committed:
a watcher (:mod:`daemon.wakeup`) hears of each commit and makes the ``pending`` job run at once. The job also runs
every :data:`PENDING_CHECK_SECONDS`, in case a wake-up is missed (the database connection of the watcher lost, an
in-memory database).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import drivers
from daemon.config import Settings
from daemon.db import make_engine, session_factory, upgrade
from daemon.db.models import utcnow
from daemon.polling import Poller
from daemon.wakeup import JobKick, QueueWatcher, watcher_for

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}

#: How often the daemon looks for queued router work even when no wake-up came (:mod:`daemon.wakeup` makes it look
#: at once after each commit; this check is the safety net).
PENDING_CHECK_SECONDS = 3

_current: Daemon | None = None


def _daemon() -> Daemon:
    if _current is None:
        raise RuntimeError("the edgebill daemon is not running in this process")
    return _current


# --- job functions (module level, arguments are names) ------------------------------------------------------


def reconcile_job(router_name: str | None = None) -> None:
    """Reconcile one router, or all of them concurrently."""
    from daemon import reconcile

    d = _daemon()
    with d.reconcile_lock:
        if router_name is None:
            reports = reconcile.reconcile_all(d.sessions, d.settings, factory=d.routers.lease)
        else:
            reports = [reconcile.reconcile_router(d.sessions, d.settings, router_name, factory=d.routers.lease)]
    for report in reports:
        log.info("reconcile %s", report.summary())


def pending_job() -> None:
    """Reconcile the routers that have queued work (a plan change, a suspension, a payment's release).

    Changes made by other processes (the dashboard, the CLI) reach the router within seconds this way, without
    waiting for the full reconcile interval. When a reconcile is already running it completes the queue itself,
    so this run steps aside. A router whose due operations all name a service is run scoped to those services
    (only their entries are read and written); one with an operation for the whole router is run in full.
    """
    from daemon import reconcile
    from daemon.services.ops import routers_with_due_ops

    d = _daemon()
    with d.sessions() as session:
        names = [n for n in routers_with_due_ops(session) if n in d.router_names]
    if not names or not d.reconcile_lock.acquire(blocking=False):
        return
    try:
        for name in names:
            with d.sessions() as session:
                services = reconcile.due_services(session, name)
            if services is not None and not services:  # carried out meanwhile (by the CLI, say)
                continue
            report = reconcile.reconcile_router(
                d.sessions, d.settings, name, services=services, factory=d.routers.lease
            )
            log.info("reconcile %s", report.summary())
    finally:
        d.reconcile_lock.release()


def pending_check_job() -> None:
    """The ``pending`` job: :func:`pending_job`, on its interval and whenever the watcher reports a commit."""
    _daemon().pending_kick.run(pending_job)


def poll_job() -> None:
    _daemon().poller.poll_all()


def dunning_job() -> None:
    """Dunning between daily runs: promises that ran out, payments that did not come."""
    _daemon().dunning_step()


def daily_job() -> None:
    """The daily billing and dunning run, for the billing day that has just begun."""
    d = _daemon()
    for name, step in d.daily_steps:
        log.info("daily run: %s", name)
        step()


class Daemon:
    """The scheduler and what its jobs share."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session] | None = None) -> None:
        self.settings = settings
        if sessions is None:
            engine = make_engine(settings.database.url)
            upgrade(engine)
            sessions = session_factory(engine)
        self.sessions = sessions
        #: One driver per router, with its session and caches, for the life of the daemon (closed at stop).
        self.routers = drivers.RouterPool()
        self.poller = Poller(settings, sessions, self.routers.lease)
        self.router_names = frozenset(r.name for r in settings.routers)
        #: Held while routers are written to, so that two runs never push to the same router at once.
        self.reconcile_lock = threading.Lock()
        from daemon.billing.schedule import daily_steps, dunning_step

        #: Steps of the daily run, in order: today's billing run, then dunning.
        self.daily_steps: list[tuple[str, Callable[[], object]]] = daily_steps(settings, sessions)
        self.dunning_step = dunning_step(settings, sessions)
        self.scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone=settings.billing.timezone, daemon=True)
        self.scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)
        self.scheduler.add_listener(self._on_reconciled, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        #: Runs the ``pending`` job at once when asked (see :mod:`daemon.wakeup`).
        self.pending_kick = JobKick(self.scheduler, "pending")
        #: Set when a wake-up came while a reconcile held :attr:`reconcile_lock`: the ``pending`` run then steps
        #: aside, and work committed after that reconcile read the queue is picked up when it ends.
        self._wake_after_reconcile = threading.Event()
        #: Watches the database for commits while the daemon runs; ``None`` when stopped or not possible.
        self.watcher: QueueWatcher | None = None
        self._stopped = threading.Event()

    @staticmethod
    def _on_error(event: JobExecutionEvent) -> None:
        log.error("job %s failed", event.job_id, exc_info=event.exception)

    def _on_wakeup(self) -> None:
        """Called on the watcher's thread: router work may have been committed."""
        log.debug("wake-up: router work may be queued, running the pending check now")
        if self.reconcile_lock.locked():
            self._wake_after_reconcile.set()
        self.pending_kick.request()

    def _on_reconciled(self, event: JobExecutionEvent) -> None:
        if event.job_id == "reconcile" and self._wake_after_reconcile.is_set():
            self._wake_after_reconcile.clear()
            log.debug("wake-up during a reconcile: running the pending check now")
            self.pending_kick.request()

    def schedule(self) -> None:
        s = self.settings.scheduler
        now = utcnow()
        self.scheduler.add_job(
            reconcile_job,
            IntervalTrigger(seconds=s.reconcile_interval.total_seconds()),
            id="reconcile",
            replace_existing=True,
            next_run_time=now,
        )
        self.scheduler.add_job(
            pending_check_job,
            IntervalTrigger(seconds=PENDING_CHECK_SECONDS),
            id="pending",
            replace_existing=True,
        )
        self.scheduler.add_job(
            poll_job,
            IntervalTrigger(seconds=s.poll_interval.total_seconds()),
            id="poll",
            replace_existing=True,
            next_run_time=now + timedelta(seconds=5),
        )
        self.scheduler.add_job(
            dunning_job,
            IntervalTrigger(seconds=s.dunning_interval.total_seconds()),
            id="dunning",
            replace_existing=True,
        )
        self.scheduler.add_job(
            daily_job,
            CronTrigger(hour=s.billing_at.hour, minute=s.billing_at.minute, timezone=self.settings.billing.timezone),
            id="daily",
            replace_existing=True,
        )

    def start(self) -> None:
        global _current
        if _current is not None and _current is not self:
            raise RuntimeError("another edgebill daemon already runs in this process")
        _current = self
        self.schedule()
        self.scheduler.start()
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, Engine):
            self.watcher = watcher_for(bind, self._on_wakeup)
        if self.watcher is not None:
            self.watcher.start()
        else:
            log.info("no wake-ups for this database: queued router work is checked every %d s", PENDING_CHECK_SECONDS)
        log.info(
            "daemon started: %d router(s), reconcile every %s",
            len(self.settings.routers),
            self.settings.scheduler.reconcile_interval,
        )

    def stop(self) -> None:
        global _current
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.routers.close()
        _current = None
        self._stopped.set()
        log.info("daemon stopped")

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    def run_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT; shut the scheduler down cleanly."""

        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s received, stopping", signal.Signals(signum).name)
            self._stopped.set()

        previous: dict[int, Any] = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.start()
        try:
            self._stopped.wait()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
