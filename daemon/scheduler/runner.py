"""The daemon process: one APScheduler that drives reconciliation, counter polling and the daily runs.

Jobs have explicit ids, are replaced on restart, coalesce missed runs and never overlap themselves. Their
functions live at module level in :mod:`daemon.scheduler.jobs` and take names, not objects; they find the running
:class:`Daemon`, which :meth:`Daemon.start` attaches there. Coordination with other processes (the web dashboard,
the CLI) goes through the database: they enqueue ``router_ops`` rows, and the daemon picks them up
(:func:`~daemon.scheduler.jobs.pending_job`) as soon as they are committed: a watcher
(:mod:`daemon.scheduler.wakeup`) hears of each commit and makes the ``pending`` job run at once. The job also runs
every :data:`PENDING_CHECK_SECONDS`, in case a wake-up is missed (the database connection of the watcher lost, an
in-memory database). :meth:`Daemon.run_forever` stops it cleanly on SIGTERM or SIGINT.
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
from daemon.billing.schedule import daily_steps, dunning_step
from daemon.config import ConfigError, Settings
from daemon.db import make_engine, session_factory, upgrade
from daemon.db.errors import unavailable_reason
from daemon.db.models import utcnow
from daemon.scheduler import jobs
from daemon.scheduler.health import Health, HealthServer
from daemon.scheduler.notify import Notifier
from daemon.scheduler.wakeup import JobKick, QueueWatcher, watcher_for
from daemon.usage.polling import Poller

__all__ = ["JOB_DEFAULTS", "PENDING_CHECK_SECONDS", "Daemon"]

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}

#: How often the daemon looks for queued router work even when no wake-up came (:mod:`daemon.scheduler.wakeup`
#: makes it look at once after each commit; this check is the safety net).
PENDING_CHECK_SECONDS = 3


def _leave_job_errors_to_the_daemon(record: logging.LogRecord) -> bool:
    """APScheduler logs a job's exception with its traceback; :meth:`Daemon._on_error` does, in fewer words
    when it is the database's fault (read-only, unreachable), so the executor's record is dropped."""
    return record.exc_info is None


class Daemon:
    """The scheduler and what its jobs share."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session] | None = None) -> None:
        self.settings = settings
        #: The engine the daemon made itself (disposed at stop); ``None`` when given its sessions.
        self._engine: Engine | None = None
        if sessions is None:
            self._engine = make_engine(settings.database.url)
            upgrade(self._engine)
            sessions = session_factory(self._engine)
        self.sessions = sessions
        #: One driver per router, with its session and caches, for the life of the daemon (closed at stop).
        self.routers = drivers.RouterPool()
        self.poller = Poller(settings, sessions, self.routers.lease)
        self.router_names = frozenset(r.name for r in settings.routers)
        #: Held while routers are written to, so that two runs never push to the same router at once.
        self.reconcile_lock = threading.Lock()
        #: Steps of the daily run, in order: today's billing run, then dunning.
        self.daily_steps: list[tuple[str, Callable[[], object]]] = daily_steps(settings, sessions)
        self.dunning_step = dunning_step(settings, sessions)
        self.scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone=settings.billing.timezone, daemon=True)
        self.scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)
        self.scheduler.add_listener(self._on_reconciled, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        #: Runs the ``pending`` job at once when asked (see :mod:`daemon.scheduler.wakeup`).
        self.pending_kick = JobKick(self.scheduler, "pending")
        #: Set when a wake-up came while a reconcile held :attr:`reconcile_lock`: the ``pending`` run then steps
        #: aside, and work committed after that reconcile read the queue is picked up when it ends.
        self._wake_after_reconcile = threading.Event()
        #: Watches the database for commits while the daemon runs; ``None`` when stopped or not possible.
        self.watcher: QueueWatcher | None = None
        #: Metrics and readiness; served over HTTP while running when ``[daemon] metrics_listen`` is set.
        self.health = Health(self.scheduler, sessions)
        self.health_server: HealthServer | None = None
        #: systemd's notification socket (does nothing outside a ``Type=notify`` unit).
        self.notifier = Notifier()
        self._stopped = threading.Event()

    @staticmethod
    def _on_error(event: JobExecutionEvent) -> None:
        reason = unavailable_reason(event.exception)
        if reason is not None:  # read-only or unreachable: the next run retries; a traceback would tell nothing
            log.error("job %s failed: %s", event.job_id, reason)
            return
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
            jobs.reconcile_job,
            IntervalTrigger(seconds=s.reconcile_interval.total_seconds()),
            id="reconcile",
            replace_existing=True,
            next_run_time=now,
        )
        self.scheduler.add_job(
            jobs.pending_check_job,
            IntervalTrigger(seconds=PENDING_CHECK_SECONDS),
            id="pending",
            replace_existing=True,
        )
        self.scheduler.add_job(
            jobs.poll_job,
            IntervalTrigger(seconds=s.poll_interval.total_seconds()),
            id="poll",
            replace_existing=True,
            next_run_time=now + timedelta(seconds=5),
        )
        self.scheduler.add_job(
            jobs.dunning_job,
            IntervalTrigger(seconds=s.dunning_interval.total_seconds()),
            id="dunning",
            replace_existing=True,
        )
        self.scheduler.add_job(
            jobs.daily_job,
            CronTrigger(hour=s.billing_at.hour, minute=s.billing_at.minute, timezone=self.settings.billing.timezone),
            id="daily",
            replace_existing=True,
        )
        if self.notifier.watchdog is not None:
            self.scheduler.add_job(
                jobs.watchdog_job,
                IntervalTrigger(seconds=self.notifier.watchdog.total_seconds() / 2),
                id="watchdog",  # first ping half an interval after start, so always after READY=1
                replace_existing=True,
            )

    def notify_alive(self) -> None:
        """Tell systemd's watchdog the daemon is alive, while its scheduler is healthy (run by the scheduler)."""
        if self.health.scheduler_problem() is None:
            self.notifier.alive()

    def start(self) -> None:
        address = self.settings.daemon.metrics_address
        if address is not None:
            try:
                self.health_server = HealthServer(self.health, address)
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {self.settings.daemon.metrics_listen}: {exc.strerror or exc}",
                    path=self.settings.path,
                    key="daemon.metrics_listen",
                ) from None
        jobs.attach(self)
        logging.getLogger("apscheduler.executors.default").addFilter(_leave_job_errors_to_the_daemon)
        self.schedule()
        self.scheduler.start()
        if self.health_server is not None:
            self.health_server.start()
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
        self.notifier.ready(f"running: {len(self.settings.routers)} router(s)")

    def stop(self) -> None:
        self.notifier.stopping()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.routers.close()
        if self.health_server is not None:
            self.health_server.stop()
            self.health_server = None
        if self._engine is not None:
            self._engine.dispose()
        jobs.detach()
        self._stopped.set()
        log.info("daemon stopped")

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    def run_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT; shut the scheduler down cleanly."""

        received: list[int] = []

        def _stop(signum: int, _frame: FrameType | None) -> None:
            # Only a plain append here: the handler runs in the main thread, which may hold the event's lock in
            # wait() when the signal arrives, so setting the event (or logging) from here could deadlock.
            received.append(signum)

        previous: dict[int, Any] = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.start()
        try:
            while not received and not self._stopped.wait(0.2):
                pass
            if received:
                log.info("signal %s received, stopping", signal.Signals(received[0]).name)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
