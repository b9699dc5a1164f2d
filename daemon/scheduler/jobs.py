"""The functions the daemon's scheduler runs: module level, taking names (never objects), as APScheduler wants.

They find what they share (the settings, the database, the reconcile lock, the poller...) on the running daemon
:func:`attach`\\ ed to this process: a :class:`JobHost`, which :class:`daemon.scheduler.runner.Daemon` is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from daemon import reconcile
from daemon.config import Settings
from daemon.scheduler.wakeup import JobKick
from daemon.services.ops import due_services, routers_with_due_ops
from daemon.usage.polling import Poller
from drivers import RouterPool

__all__ = [
    "JobHost",
    "attach",
    "daily_job",
    "detach",
    "dunning_job",
    "pending_check_job",
    "pending_job",
    "poll_job",
    "reconcile_job",
    "watchdog_job",
]

log = logging.getLogger(__name__)


class JobHost(Protocol):
    """What the jobs use of the running daemon."""

    settings: Settings
    sessions: sessionmaker[Session]
    poller: Poller
    #: The routers' drivers, kept open with their sessions and caches for the daemon's life.
    routers: RouterPool
    router_names: frozenset[str]
    #: Held while routers are written to, so that two runs never push to the same router at once.
    reconcile_lock: threading.Lock
    #: Runs the ``pending`` job at once when asked.
    pending_kick: JobKick
    #: Steps of the daily run, in order.
    daily_steps: list[tuple[str, Callable[[], object]]]
    dunning_step: Callable[[], object]

    def notify_alive(self) -> None:
        """Tell systemd's watchdog the daemon is alive, if it is healthy."""


_current: JobHost | None = None


def attach(host: JobHost) -> None:
    """Make ``host`` the daemon the jobs of this process work for; there is one at a time."""
    global _current
    if _current is not None and _current is not host:
        raise RuntimeError("another edgebill daemon already runs in this process")
    _current = host


def detach() -> None:
    """The daemon has stopped: jobs that still run find none."""
    global _current
    _current = None


def _daemon() -> JobHost:
    if _current is None:
        raise RuntimeError("the edgebill daemon is not running in this process")
    return _current


def reconcile_job(router_name: str | None = None) -> None:
    """Reconcile one router, or all of them concurrently."""
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
    d = _daemon()
    with d.sessions() as session:
        names = [n for n in routers_with_due_ops(session) if n in d.router_names]
    if not names or not d.reconcile_lock.acquire(blocking=False):
        return
    try:
        for name in names:
            with d.sessions() as session:
                services = due_services(session, name)
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


def watchdog_job() -> None:
    """Keeps systemd's watchdog fed: it runs only while the scheduler dispatches jobs."""
    _daemon().notify_alive()
