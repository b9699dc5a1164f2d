"""Wake-ups for queued router work: the daemon learns at once that another process queued a ``router_ops`` row.

Every process that changes a service enqueues router work in the same transaction (:mod:`daemon.services.ops`).
A :class:`QueueWatcher` runs in its own thread and calls a callback whenever such work may have been committed:

* PostgreSQL: ``enqueue`` runs ``pg_notify('edgebill_router_ops', <router id>)`` in the caller's transaction;
  PostgreSQL delivers it when that transaction commits and drops it when it rolls back. The watcher keeps one
  autocommit connection of its own that ``LISTEN``\\ s on the channel, and connects again, with a growing delay,
  when the server drops it.
* SQLite: a file has no notifications, but ``PRAGMA data_version`` on a connection changes whenever another
  connection commits. The watcher reads it on one connection of its own every :data:`SQLITE_POLL_SECONDS`;
  each check reads one value from the shared WAL index and costs microseconds. Any commit wakes it (billing,
  polling, the dashboard's own writes), not only queued router work: the callback must be cheap when nothing
  is due.

The callback runs on the watcher's thread and must only hand the work on. :class:`JobKick` is the hand-off the
daemon uses: it makes an APScheduler job run now, turns a burst of requests into one or two runs, and never
loses a request made while the job runs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from psycopg import sql
from sqlalchemy import Engine

from daemon.services.ops import NOTIFY_CHANNEL

__all__ = [
    "PG_WAIT_SECONDS",
    "RETRY_DELAYS",
    "SQLITE_POLL_SECONDS",
    "WATCHER_THREAD",
    "JobKick",
    "PostgresWatcher",
    "QueueWatcher",
    "SQLiteWatcher",
    "pg_connect_args",
    "watcher_for",
]

log = logging.getLogger(__name__)

#: How often the SQLite watcher reads ``PRAGMA data_version``: a commit is noticed within this time.
SQLITE_POLL_SECONDS = 0.005
#: Longest the PostgreSQL watcher waits for a notification before it checks whether it should stop.
PG_WAIT_SECONDS = 0.25
#: The name of the watcher's thread (and, on PostgreSQL, the ``application_name`` of its connection).
WATCHER_THREAD = "edgebill-wakeup"
#: Seconds between attempts to reach the database again: the first delay, doubled each time up to the second.
RETRY_DELAYS = (0.25, 30.0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class QueueWatcher(ABC):
    """A thread that calls ``callback`` whenever router work may have been queued.

    :meth:`start` and :meth:`stop` run it; :attr:`ready` is set while it is watching. A lost connection is
    logged once per outage; the watcher tries again after :data:`RETRY_DELAYS` and, once it watches again,
    calls ``callback`` once, since work queued meanwhile was not seen.
    """

    def __init__(
        self, callback: Callable[[], None], *, retry_delays: tuple[float, float] = RETRY_DELAYS, target: str
    ) -> None:
        self._callback = callback
        self._retry_delays = retry_delays
        #: What is watched, for log lines: never shows a password.
        self.target = target
        #: Set while the watcher is connected and watching.
        self.ready = threading.Event()
        #: Waits completed while connected (one ``data_version`` check, or one wait for notifications).
        self.rounds = 0
        #: Connections made.
        self.connections = 0
        #: Attempts to connect that failed, and connections lost.
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = False

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the watcher is already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=WATCHER_THREAD, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and wait for the thread to end (at most ``timeout`` seconds)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the wake-up watcher on %s did not stop within %.0f s", self.target, timeout)
        self.ready.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @abstractmethod
    def _watch(self) -> None:
        """Connect and watch until :attr:`_stop` is set; raise when the connection fails."""

    def _connected(self) -> None:
        """Called by :meth:`_watch` once it watches."""
        self.connections += 1
        if self._outage:
            self._outage = False
            log.info("watching %s for queued router work again", self.target)
            self._wake()
        elif self.connections == 1:
            log.info("watching %s for queued router work", self.target)
        self.ready.set()

    def _wake(self) -> None:
        try:
            self._callback()
        except Exception:
            log.exception("the wake-up callback failed")

    def _run(self) -> None:
        delay = self._retry_delays[0]
        while not self._stop.is_set():
            connections = self.connections
            try:
                self._watch()
            except Exception as exc:
                self.ready.clear()
                self.failures += 1
                if not self._outage:
                    self._outage = True
                    log.warning(
                        "cannot watch %s for queued router work (%s); trying again, router work waits for the "
                        "periodic check meanwhile",
                        self.target,
                        _first_line(exc),
                        exc_info=not isinstance(exc, psycopg.Error | sqlite3.Error | OSError),
                    )
                if self.connections > connections:
                    delay = self._retry_delays[0]
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self._retry_delays[1])
        self.ready.clear()


class PostgresWatcher(QueueWatcher):
    """``LISTEN`` on :data:`~daemon.services.ops.NOTIFY_CHANNEL` over a dedicated autocommit connection."""

    def __init__(self, engine: Engine, callback: Callable[[], None], **options: Any) -> None:
        super().__init__(callback, target=engine.url.render_as_string(hide_password=True), **options)
        self._connect_args = pg_connect_args(engine)

    def _watch(self) -> None:
        args, kwargs = self._connect_args
        with psycopg.connect(*args, autocommit=True, **kwargs) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
            self._connected()
            while not self._stop.is_set():
                for _notify in conn.notifies(timeout=PG_WAIT_SECONDS):
                    self._wake()
                    if self._stop.is_set():
                        return
                self.rounds += 1


class SQLiteWatcher(QueueWatcher):
    """``PRAGMA data_version`` read on a dedicated connection every :data:`SQLITE_POLL_SECONDS`."""

    def __init__(self, engine: Engine, callback: Callable[[], None], **options: Any) -> None:
        super().__init__(callback, target=engine.url.render_as_string(hide_password=True), **options)
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect_args: tuple[list[Any], dict[str, Any]] = (list(args), dict(kwargs))

    def _watch(self) -> None:
        args, kwargs = self._connect_args
        conn = sqlite3.connect(*args, **{**kwargs, "timeout": 1.0, "isolation_level": None})
        try:
            version = self._version(conn)
            self._connected()
            while not self._stop.wait(SQLITE_POLL_SECONDS):
                current = self._version(conn)
                self.rounds += 1
                if current != version:
                    version = current
                    self._wake()
        finally:
            conn.close()

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        # fetchall() runs the statement to its end, so that no read transaction stays open between checks.
        rows = conn.execute("PRAGMA data_version").fetchall()
        return int(rows[0][0])


def pg_connect_args(engine: Engine) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of ``psycopg.connect`` for ``engine``'s database: those its SQLAlchemy dialect connects with
    (the URL's query parameters included), with :data:`WATCHER_THREAD` as ``application_name`` unless the URL names
    one, and a ``connect_timeout`` of 5 s unless it sets one."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    params = dict(kwargs)
    params.setdefault("application_name", WATCHER_THREAD)
    params.setdefault("connect_timeout", 5)
    return list(args), params


def watcher_for(engine: Engine, callback: Callable[[], None], **options: Any) -> QueueWatcher | None:
    """The watcher for ``engine``'s database, or ``None`` for an in-memory SQLite database (which no other
    connection, let alone another process, can write to)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresWatcher(engine, callback, **options)
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return None
    return SQLiteWatcher(engine, callback, **options)


class JobKick:
    """Runs an APScheduler job now when asked, without piling up runs or losing a request.

    The job's function calls :meth:`run` with its body. :meth:`request` (from any thread) sets the job's next run
    time to now, unless a run is already asked for and has not started, or one is running: then that run ends
    with the request noted, and the job runs once more straight after. Runs therefore never overlap (the job
    keeps ``max_instances=1``), a burst of requests gives one or two runs, and a request made during a run,
    possibly after the run read the queue, always gets a later run. The job keeps its own trigger too.
    """

    def __init__(self, scheduler: BaseScheduler, job_id: str) -> None:
        self._scheduler = scheduler
        self.job_id = job_id
        self._lock = threading.Lock()
        self._running = False
        self._kicked = False
        self._requested = False
        scheduler.add_listener(self._ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def request(self) -> None:
        """Ask for a run of the job as soon as possible."""
        with self._lock:
            self._requested = True
            if self._running or self._kicked:
                return
            self._kicked = True
        self._now()

    def run(self, body: Callable[[], None]) -> None:
        """Run ``body`` as the job: requests made from now on ask for another run."""
        with self._lock:
            self._running = True
            self._kicked = False
            self._requested = False
        body()

    def _ended(self, event: JobExecutionEvent) -> None:
        # Listeners run after the executor has counted the run as finished, so the next run is not refused as a
        # second instance.
        if event.job_id != self.job_id:
            return
        with self._lock:
            self._running = False
            again = self._requested and not self._kicked
            if again:
                self._kicked = True
        if again:
            self._now()

    def _now(self) -> None:
        if not self._scheduler.running:
            return
        try:
            self._scheduler.modify_job(self.job_id, next_run_time=datetime.now(UTC))
        except JobLookupError:
            with self._lock:
                self._kicked = False
