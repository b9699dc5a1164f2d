"""Reconcile speed against emulated RouterOS routers over TCP, through the whole engine (SQLite database,
decrypted passwords, read, plan, apply, read back, record).

Prints, for one router carrying 5,000 services and then for 20 routers of 2,500 services reconciled
concurrently: the first full push, a no-change reconcile (its time and writes, which must be 0), and a 1%
change (plan changes on 1% of the services, which also drops their sessions); then one service's plan change
pushed by a run scoped to it, as the daemon pushes a change.

    .venv/bin/python -m bench.mikrotik_reconcile [--services 5000] [--routers 20] [--per-router 2500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from daemon import reconcile
from daemon.config import RouterSettings, SecuritySettings
from daemon.db import Customer, Plan, Router, RouterKind, Service, make_engine, session_factory, upgrade
from daemon.reconcile import ReconcileReport
from daemon.security import SecretBox
from lab.routeros import RouterOSEmulator
from policies.desired import ConnectionType
from tests.lab_setup import EngineSettings, router_settings, write_secret

USERS = {"admin": "bench"}
KEY = Fernet.generate_key()


def populate(sessions: sessionmaker[Session], routers: Sequence[RouterSettings], per_router: int) -> None:
    """``per_router`` services per router: 80% PPPoE (a tenth with a static address), 20% static-IP queues."""
    box = SecretBox([KEY])
    password = box.encrypt("bench-password")  # one ciphertext: decryption cost is the same per row
    with sessions.begin() as s:
        plans = [
            Plan(
                name=f"Home {n}M", download_bps=n * 1_000_000, upload_bps=n * 500_000, price_minor=1000, currency="EUR"
            )
            for n in (10, 20, 50, 100)
        ]
        customer = Customer(name="bench")
        s.add_all([*plans, customer])
        s.flush()
        for r, params in enumerate(routers):
            router = Router(name=params.name, kind=RouterKind.MIKROTIK, host=params.host, port=params.port)
            s.add(router)
            s.flush()
            rows = []
            for i in range(per_router):
                pppoe = i % 5 != 0
                address = IPv4Address("10.0.0.0") + (r << 16) + i + 1
                rows.append(
                    Service(
                        customer_id=customer.id,
                        plan_id=plans[i % len(plans)].id,
                        router_id=router.id,
                        connection_type=ConnectionType.PPPOE if pppoe else ConnectionType.STATIC,
                        pppoe_login=f"sub{r}x{i}" if pppoe else None,
                        pppoe_password=password if pppoe else None,
                        ipv4=str(address) if (not pppoe or i % 10 == 1) else None,
                        started_on=date(2026, 1, 1),
                    )
                )
            s.add_all(rows)


def change_one_percent(sessions: sessionmaker[Session]) -> int:
    """Move every 100th service to the next plan."""
    with sessions.begin() as s:
        plans = list(s.scalars(select(Plan.id).order_by(Plan.id)))
        ids = list(s.scalars(select(Service.id).order_by(Service.id)))[::100]
        for sid in ids:
            current = s.scalars(select(Service.plan_id).where(Service.id == sid)).one()
            nxt = plans[(plans.index(current) + 1) % len(plans)]
            s.execute(update(Service).where(Service.id == sid).values(plan_id=nxt))
    return len(ids)


def run(
    sessions: sessionmaker[Session], settings: EngineSettings, emulators: Sequence[RouterOSEmulator], label: str
) -> None:
    def once(title: str) -> None:
        writes_before = sum(e.write_count for e in emulators)
        started = time.perf_counter()
        if len(settings.routers) == 1:
            reports: list[ReconcileReport] = [reconcile.reconcile_router(sessions, settings, settings.routers[0].name)]
        else:
            reports = reconcile.reconcile_all(sessions, settings)
        elapsed = time.perf_counter() - started
        writes = sum(e.write_count for e in emulators) - writes_before
        failed = [r for r in reports if not r.ok]
        slowest = max(r.seconds for r in reports)
        print(
            f"{label:<28} {title:<22} {elapsed:8.3f} s  writes {writes:>7}  "
            f"(slowest router {slowest:.3f} s{', FAILED: ' + str(failed[0].error) if failed else ''})"
        )

    once("first push")
    once("no-change")
    changed = change_one_percent(sessions)
    once(f"1% change ({changed} svc)")
    once("no-change again")
    scoped_change(sessions, settings, emulators, label)


def scoped_change(
    sessions: sessionmaker[Session], settings: EngineSettings, emulators: Sequence[RouterOSEmulator], label: str
) -> None:
    """One service's plan change pushed by a run scoped to it (as the daemon pushes it), five times."""
    name = settings.routers[0].name
    with sessions() as s:
        sid = s.scalars(
            select(Service.id).join(Router, Router.id == Service.router_id).where(Router.name == name).limit(1)
        ).one()
    times: list[float] = []
    writes = 0
    for _ in range(5):
        with sessions.begin() as s:
            plans = list(s.scalars(select(Plan.id).order_by(Plan.id)))
            current = s.scalars(select(Service.plan_id).where(Service.id == sid)).one()
            s.execute(update(Service).where(Service.id == sid).values(plan_id=plans[(plans.index(current) + 1) % 4]))
        before = emulators[0].write_count
        started = time.perf_counter()
        report = reconcile.reconcile_router(sessions, settings, name, services={sid})
        times.append(time.perf_counter() - started)
        writes = emulators[0].write_count - before
        assert report.ok and report.scope == (sid,), report.summary()
    times.sort()
    print(
        f"{label:<28} {'1 svc, scoped run':<22} {times[0]:8.3f} s  writes {writes:>7}  "
        f"(best of 5; median {times[2]:.3f} s, on {name})"
    )


def bench(routers: int, per_router: int, label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        emulators = [
            stack.enter_context(RouterOSEmulator(users=USERS, port=0, seed=i, identity=f"bench{i}"))
            for i in range(routers)
        ]
        password = write_secret(Path(tmp) / "router.pw", USERS["admin"])
        key = write_secret(Path(tmp) / "secret.key", KEY.decode("ascii"))
        settings = EngineSettings(
            routers=tuple(
                router_settings(e.port, password, name=f"edge{i}", tls_verify=False, timeout=timedelta(seconds=60))
                for i, e in enumerate(emulators)
            ),
            security=SecuritySettings(secret_key_file=key),
        )
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        populate(sessions, settings.routers, per_router)
        run(sessions, settings, emulators, label)
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=5000, help="services on the single router")
    parser.add_argument("--routers", type=int, default=20, help="routers reconciled concurrently")
    parser.add_argument("--per-router", type=int, default=2500, help="services on each of those routers")
    args = parser.parse_args(argv)
    bench(1, args.services, f"1 router x {args.services}")
    bench(args.routers, args.per_router, f"{args.routers} routers x {args.per_router}")


if __name__ == "__main__":
    main()
