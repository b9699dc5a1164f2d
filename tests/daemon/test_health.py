"""The daemon's ``/metrics``, ``/healthz`` and ``/readyz``, scraped over HTTP from a running daemon."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import ConfigError, DaemonSettings, Settings, load_settings
from daemon.scheduler import Daemon
from daemon.services.state import set_service_state
from lab.routeros import RouterOSEmulator
from tests.conftest import PG_ADMIN_DSN
from tests.daemon.conftest import secret
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: What the example Grafana dashboard and the alert rules of docs/operations.md query.
DASHBOARD = ROOT / "contrib" / "grafana" / "edgebill.json"
OPERATIONS = ROOT / "docs" / "operations.md"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def setup(setup: tuple[Settings, sessionmaker[Session], int]) -> tuple[Settings, sessionmaker[Session], int]:
    """The daemon tests' site, with the metrics listener on port 0: the system picks a free port."""
    settings, sessions, service_id = setup
    return dataclasses.replace(settings, daemon=DaemonSettings("127.0.0.1:0")), sessions, service_id


@pytest.fixture
def daemon(setup: tuple[Settings, sessionmaker[Session], int]) -> Iterator[Daemon]:
    settings, sessions, _ = setup
    running = Daemon(settings, sessions)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def get(daemon: Daemon, path: str, accept: str = "*/*") -> tuple[int, str, str]:
    """Status, content type and body of ``GET path`` on the daemon's listener."""
    assert daemon.health_server is not None
    host, port = daemon.health_server.address
    request = urllib.request.Request(f"http://{host}:{port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def scrape(daemon: Daemon) -> Samples:
    status, content_type, body = get(daemon, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_metrics_show_routers_queue_and_jobs(
    router: RouterOSEmulator, daemon: Daemon, setup: tuple[Settings, sessionmaker[Session], int]
) -> None:
    _, sessions, service_id = setup
    wait_for(lambda: secret(router, "ada") is not None, "the PPPoE secret on the router")
    reconciled = ("edgebill_job_runs_total", (("outcome", "ok"), ("task", "reconcile")))
    wait_for(
        lambda: scrape(daemon).get(("edgebill_router_up", (("kind", "mikrotik"), ("router", "core1")))) == 1,
        "core1 reported up",
    )
    wait_for(lambda: reconciled in scrape(daemon), "a reconcile run counted")  # counted once the job returns
    samples = scrape(daemon)
    assert samples[("edgebill_database_up", ())] == 1
    synced = samples[("edgebill_router_last_sync_timestamp_seconds", (("router", "core1"),))]
    assert time.time() - 60 < synced <= time.time() + 1
    assert samples[("edgebill_router_ops_queued", (("router", "core1"),))] == 0
    assert samples[("edgebill_payments_recorded_total", ())] == 0
    assert samples[("edgebill_invoices_issued_total", ())] == 0
    assert samples[reconciled] >= 1
    assert samples[("edgebill_job_duration_seconds_count", (("task", "reconcile"),))] >= 1
    assert samples[("edgebill_job_duration_seconds_bucket", (("le", "+Inf"), ("task", "reconcile")))] >= 1
    assert samples[("process_resident_memory_bytes", ())] > 0

    # The example dashboard and the documented alerts query only what the daemon serves.
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"] for t in p["targets"]]
    exprs += re.findall(r"expr: (.*)", OPERATIONS.read_text(encoding="utf-8"))
    queried = {name for expr in exprs for name in re.findall(r"\b((?:edgebill|process)_\w+)", expr)}
    served = {name for name, _ in samples}
    assert queried and queried <= served, queried - served

    # With the scheduler stopped, queued work waits: the queue's depth and age show it.
    daemon.scheduler.shutdown(wait=True)
    with sessions.begin() as s:
        set_service_state(s, "test", service_id, "suspend", "invoice unpaid")
    time.sleep(0.2)
    samples = scrape(daemon)
    assert samples[("edgebill_router_ops_queued", (("router", "core1"),))] >= 1  # a reconcile, a disconnect
    assert samples[("edgebill_router_ops_oldest_age_seconds", (("router", "core1"),))] >= 0.2


def test_health_and_readiness(daemon: Daemon) -> None:
    assert get(daemon, "/healthz")[::2] == (200, "ok\n")
    assert get(daemon, "/readyz")[::2] == (200, "ready\n")
    status, content_type, body = get(daemon, "/readyz", accept="application/json")
    assert (status, content_type, json.loads(body)) == (200, "application/json", {"ready": True, "problems": []})
    assert get(daemon, "/nothing")[0] == 404

    daemon.scheduler.shutdown(wait=True)
    assert get(daemon, "/readyz")[::2] == (503, "scheduler not running\n")
    status, _, body = get(daemon, "/readyz", accept="application/json")
    assert (status, json.loads(body)) == (503, {"ready": False, "problems": ["scheduler not running"]})
    assert get(daemon, "/healthz")[0] == 200  # the process still answers


@pytest.mark.postgres
def test_readiness_fails_when_the_database_is_gone(
    postgres_url: str, router: RouterOSEmulator, make_config: Callable[..., Path]
) -> None:
    config = make_config(
        database_url=postgres_url,
        routers=[{"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": router.port}],
    )
    settings = dataclasses.replace(load_settings(config), daemon=DaemonSettings("127.0.0.1:0"))
    running = Daemon(settings)
    running.start()
    name = postgres_url.rsplit("/", 1)[1]
    try:
        assert get(running, "/readyz")[::2] == (200, "ready\n")
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:  # the database refuses every connection
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        status, _, body = get(running, "/readyz")
        assert status == 503 and body.startswith("database unreachable: ")
        assert "scheduler" not in body
        assert scrape(running)[("edgebill_database_up", ())] == 0
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        assert get(running, "/readyz")[::2] == (200, "ready\n")
    finally:
        running.stop()


def test_a_taken_metrics_port_is_a_clear_error(setup: tuple[Settings, sessionmaker[Session], int]) -> None:
    settings, sessions, _ = setup
    first = Daemon(settings, sessions)
    first.start()
    try:
        assert first.health_server is not None
        host, port = first.health_server.address
        taken = dataclasses.replace(settings, daemon=DaemonSettings(f"{host}:{port}"))
        with pytest.raises(ConfigError, match=r"daemon\.metrics_listen: cannot listen on 127\.0\.0\.1:\d+: "):
            Daemon(taken, sessions).start()
    finally:
        first.stop()
