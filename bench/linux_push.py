"""A plan change pushed by the running daemon to a Linux gateway of 10,000 subscribers (needs root).

The whole path, as in production: the lab gateway over SSH, an SQLite database of N static services, the daemon
(:class:`daemon.scheduler.Daemon`) with its wake-up watcher. Each round commits one plan change the way the
dashboard and the CLI do (``services.set_service_plan``), then measures, from the commit:

* until the new rate is on the gateway (the driver's apply returned: ``tc`` and nftables have it);
* until the daemon has recorded the run (the queued operation is done).

The first full build and the daemon's first full reconcile are printed too. The reconcile interval is an hour,
so every change goes through the wake-up and a run scoped to the changed service.

Usage: ``python -m bench.linux_push [--subscribers 10000] [--changes 20]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from ipaddress import IPv4Network
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.linux_tc import addresses
from daemon import reconcile
from daemon.config import RouterSettings, Settings, load_settings
from daemon.db import (
    Customer,
    Plan,
    Router,
    RouterKind,
    RouterOp,
    RouterOpStatus,
    Service,
    make_engine,
    session_factory,
    upgrade,
)
from daemon.demo import write_demo_config
from daemon.scheduler import Daemon
from daemon.services.services import set_service_plan
from drivers.linux.layout import class_id
from lab.linux_gw import LinuxGateway, problem
from policies.desired import ConnectionType

PLANS = (("Home 10M", 10_000_000, 5_000_000), ("Fast 20M", 20_000_000, 10_000_000))


class _Applied(logging.Handler):
    """Notes the moment the Linux driver reports a write (its ``applied %d changes`` line)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()
        self.at = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s: applied %d changes":
            self.at = time.perf_counter()
            self.event.set()


def settings_for(gw: LinuxGateway, data_dir: Path) -> Settings:
    base = load_settings(write_demo_config(data_dir))
    router = RouterSettings(
        name="gw",
        kind="linux",
        host=gw.host,
        port=gw.port,
        username="root",
        ssh_key_file=gw.key_file,
        known_hosts_file=gw.known_hosts_file,
        interface=gw.interface,
        upload_ifb=gw.upload_ifb,
        leaf_qdisc="pfifo",
        subnets=(IPv4Network("100.64.0.0/10"),),
        timeout=timedelta(seconds=60),
    )
    hour = timedelta(hours=1)
    return dataclasses.replace(
        base,
        routers=(router,),
        enforcement=dataclasses.replace(base.enforcement, payment_page_url=gw.payment_page_url),
        scheduler=dataclasses.replace(base.scheduler, reconcile_interval=hour, poll_interval=hour),
    )


def populate(sessions: sessionmaker[Session], n: int) -> list[int]:
    with sessions.begin() as s:
        plans = [
            Plan(name=name, download_bps=d, upload_bps=u, price_minor=2000, currency="USD") for name, d, u in PLANS
        ]
        customer = Customer(name="bench")
        router = Router(name="gw", kind=RouterKind.LINUX, host="127.0.0.1", port=22)
        s.add_all([*plans, customer, router])
        s.flush()
        rows = [
            Service(
                customer_id=customer.id,
                plan_id=plans[0].id,
                router_id=router.id,
                connection_type=ConnectionType.STATIC,
                ipv4=str(addr),
                started_on=date(2026, 1, 1),
            )
            for addr in addresses(n)
        ]
        s.add_all(rows)
        s.flush()
        return [row.id for row in rows]


def pending(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return len(s.scalars(select(RouterOp.id).where(RouterOp.status == RouterOpStatus.PENDING)).all())


def wait(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the daemon did not finish in time")
        time.sleep(0.0005)


def ms(values: Sequence[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return f"median {median * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  max {ordered[-1] * 1000:6.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args(argv)
    why = problem()
    if why:
        print(f"skipped: {why}", file=sys.stderr)
        return 2
    applied = _Applied()
    logging.getLogger("drivers.linux.driver").addHandler(applied)
    logging.getLogger("drivers.linux.driver").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="edgebill-push-") as tmp, LinuxGateway.up(1) as gw:
        settings = settings_for(gw, Path(tmp))
        engine = make_engine(settings.database.url)
        upgrade(engine)
        sessions = session_factory(engine)
        ids = populate(sessions, args.subscribers)
        started = time.perf_counter()
        report = reconcile.reconcile_router(sessions, settings, "gw")
        build = time.perf_counter() - started
        assert report.ok, report.error
        daemon = Daemon(settings, sessions)
        before = last_sync(sessions)
        started = time.perf_counter()
        daemon.start()
        try:
            wait(lambda: last_sync(sessions) != before)
            first_run = time.perf_counter() - started
            on_gateway: list[float] = []
            recorded: list[float] = []
            for i in range(args.changes):
                service_id = ids[(i * 997) % len(ids)]
                applied.event.clear()
                with sessions.begin() as s:
                    set_service_plan(s, "bench", service_id, PLANS[1][0])
                committed = time.perf_counter()
                if not applied.event.wait(30):
                    raise TimeoutError("the change did not reach the gateway")
                on_gateway.append(applied.at - committed)
                wait(lambda: pending(sessions) == 0)
                recorded.append(time.perf_counter() - committed)
                time.sleep(0.2)  # let the daemon's own follow-up check settle between rounds
            first = class_id(addresses(args.subscribers)[0])
            rate = gw.gateway("tc", "class", "show", "dev", gw.interface, "classid", first)
        finally:
            daemon.stop()
            engine.dispose()
    n = args.subscribers
    print(f"{n} subscribers on the lab gateway, SQLite, daemon with wake-ups; {args.changes} plan changes")
    print(f"first full build through the engine      {build:7.2f} s")
    print(f"the daemon's first full reconcile        {first_run:7.2f} s (starts its one SSH session)")
    print(f"commit -> new rate on the gateway        {ms(on_gateway)}")
    print(f"commit -> run recorded in the database   {ms(recorded)}")
    print(f"(class of the first service now: {rate.strip()[:60]}...)")
    print("rounds (ms):", [round(x * 1000) for x in on_gateway])
    return 0


def last_sync(sessions: sessionmaker[Session]) -> object:
    with sessions() as s:
        return s.scalars(select(Router.last_sync_at)).one()


if __name__ == "__main__":
    raise SystemExit(main())
