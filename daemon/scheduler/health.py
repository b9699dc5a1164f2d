"""The daemon's metrics and health, served over HTTP when ``[daemon] metrics_listen`` is set.

``GET /metrics``: Prometheus text format. What lives in the database (routers up, last successful sync, the
router work queue's depth and age, payments and invoices recorded) is read at scrape time by
:class:`DatabaseCollector`, a few aggregate queries through :mod:`daemon.services.health`; the runs of the
scheduler's jobs (duration histogram and outcome counts: reconcile, pending work, polling, the daily billing run
and dunning) are counted by :class:`Health` as the scheduler reports them. The process's own figures (CPU,
memory, open files) come with them.

``GET /healthz``: 200 while the process answers. ``GET /readyz``: 200 ``ready`` when the database answers and
the scheduler runs, else 503 with the reasons, one per line (``Accept: application/json`` gets
``{"ready": false, "problems": [...]}``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.schedulers.base import STATE_RUNNING, BaseScheduler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.db.models import utcnow
from daemon.services import health

__all__ = ["JOB_BUCKETS", "DatabaseCollector", "Health", "HealthServer"]

log = logging.getLogger(__name__)

#: Buckets of the job duration histogram, in seconds: a pending check takes milliseconds, a full reconcile of
#: many routers or a billing run minutes.
JOB_BUCKETS: Final = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


class DatabaseCollector(Collector):
    """The figures kept in the database, read at each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        database_up = GaugeMetricFamily("edgebill_database_up", "1 when the last scrape could read the database")
        try:
            with self.sessions() as session:
                snap = health.snapshot(session)
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s", _one_line(exc))
            database_up.add_metric([], 0)
            yield database_up
            return
        database_up.add_metric([], 1)
        yield database_up
        now = utcnow()
        up = GaugeMetricFamily(
            "edgebill_router_up", "1 when the router's last run reached it", labels=["router", "kind"]
        )
        synced = GaugeMetricFamily(
            "edgebill_router_last_sync_timestamp_seconds",
            "When a run last brought the router to the desired state (Unix time)",
            labels=["router"],
        )
        for router in snap.routers:
            up.add_metric([router.name, router.kind], 1 if router.up else 0)
            if router.last_sync_at is not None:
                synced.add_metric([router.name], _seconds(router.last_sync_at))
        queued = GaugeMetricFamily(
            "edgebill_router_ops_queued", "Router operations waiting in the queue", labels=["router"]
        )
        oldest = GaugeMetricFamily(
            "edgebill_router_ops_oldest_age_seconds",
            "Age of the oldest router operation waiting in the queue",
            labels=["router"],
        )
        waiting = {depth.router: depth for depth in snap.queue}
        for router in snap.routers:
            depth = waiting.get(router.name)
            queued.add_metric([router.name], depth.pending if depth else 0)
            oldest.add_metric([router.name], max(0.0, (now - depth.oldest).total_seconds()) if depth else 0.0)
        payments = CounterMetricFamily("edgebill_payments_recorded", "Payments recorded, refunds included")
        payments.add_metric([], snap.payments)
        invoices = CounterMetricFamily("edgebill_invoices_issued", "Invoices and credit notes issued")
        invoices.add_metric([], snap.invoices)
        yield from (up, synced, queued, oldest, payments, invoices)


class Health:
    """The daemon's registry of metrics and its readiness, over its scheduler and database."""

    def __init__(self, scheduler: BaseScheduler, sessions: sessionmaker[Session]) -> None:
        self.scheduler = scheduler
        self.sessions = sessions
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector(sessions))
        ProcessCollector(registry=self.registry)
        self.job_seconds = Histogram(
            "edgebill_job_duration_seconds",
            "How long the scheduler's jobs ran, by job id (reconcile, pending, poll, daily, dunning)",
            ["task"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.job_runs = Counter(
            "edgebill_job_runs", "Runs of the scheduler's jobs, by outcome", ["task", "outcome"], registry=self.registry
        )
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _on_event(self, event: SchedulerEvent) -> None:
        if isinstance(event, JobSubmissionEvent) and event.code == EVENT_JOB_SUBMITTED:
            with self._lock:
                self._started[event.job_id] = time.monotonic()
            return
        if not isinstance(event, JobExecutionEvent):
            return
        with self._lock:
            started = self._started.pop(event.job_id, None)
        if started is not None:
            self.job_seconds.labels(event.job_id).observe(time.monotonic() - started)
        self.job_runs.labels(event.job_id, "error" if event.code == EVENT_JOB_ERROR else "ok").inc()

    def scheduler_problem(self) -> str | None:
        """Why the scheduler is not healthy, or ``None``."""
        if self.scheduler.state != STATE_RUNNING:
            return "scheduler not running"
        return None

    def problems(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        found = []
        try:
            with self.sessions() as session:
                health.ping(session)
        except SQLAlchemyError as exc:
            found.append(f"database unreachable: {_one_line(exc)}")
        problem = self.scheduler_problem()
        if problem:
            found.append(problem)
        return found

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(HTTPStatus.OK, self.server.health.metrics(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            problems = self.server.health.problems()
            status = HTTPStatus.SERVICE_UNAVAILABLE if problems else HTTPStatus.OK
            if "application/json" in self.headers.get("Accept", ""):
                body = json.dumps({"ready": not problems, "problems": problems}).encode()
                self._send(status, body + b"\n", "application/json")
            else:
                text = "\n".join(problems) if problems else "ready"
                self._send(status, text.encode() + b"\n", "text/plain; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics listener: " + format, *args)  # noqa: G003 (format is http.server's %-format)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], health: Health) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.health = health


class HealthServer:
    """The HTTP listener of ``/metrics``, ``/healthz`` and ``/readyz``, on a thread of its own."""

    def __init__(self, health: Health, address: tuple[str, int]) -> None:
        self._server = _Server(address, health)
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgebill-metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics and health on http://%s:%d/metrics", *self.address)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
