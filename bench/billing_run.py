"""Speed of a monthly billing run, on SQLite and on PostgreSQL.

Seeds one customer per service (monthly postpaid plans, three prices, one with a 16 % tax), all started on the
first of last month, then times the billing run that invoices them all, and the re-run for the same day,
which must create nothing; with ``--dunning``, a dunning run with every customer overdue (the worst case)
and the one after it, which changes nothing. PostgreSQL is used when it answers on 127.0.0.1:5432 (user
``postgres``, trust authentication); a scratch database is created and dropped.

    .venv/bin/python -m bench.billing_run [--services 100000] [--batch 1000] [--backend sqlite|postgres|both]
        [--dunning]
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, insert, select

from daemon.billing import run_billing, run_dunning
from daemon.config import Settings, load_settings
from daemon.db import make_engine, upgrade
from daemon.db.models import (
    Customer,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    Plan,
    PlanCycle,
    Router,
    RouterKind,
    Service,
    utcnow,
)
from policies.desired import ConnectionType, ServiceState

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
START = date(2026, 1, 1)
AS_OF = date(2026, 2, 1)
DUNNING_DAY = date(2026, 2, 25)  # ten days past the invoices' due date


def write_config(folder: Path, url: str) -> Settings:
    web = folder / "web.key"
    web.write_bytes(secrets.token_hex(32).encode())
    data = folder / "data.key"
    data.write_bytes(Fernet.generate_key())
    for path in (web, data):
        path.chmod(0o600)
    config = folder / "edgebill.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[web]\nlisten = "127.0.0.1:8080"\nsecret_key_file = "{web}"\n'
        f'[security]\nsecret_key_file = "{data}"\n[billing]\ncurrency = "USD"\ntimezone = "UTC"\n'
        '[dunning]\n[[dunning.steps]]\nname = "slow-down"\ndays_past_due = 5\naction = "throttle"\n'
        'throttle_rate = "1M/512k"\n'
    )
    config.chmod(0o600)
    return load_settings(config)


def seed(engine: Engine, services: int) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(Router),
            [{"name": "core1", "kind": RouterKind.MIKROTIK, "host": "127.0.0.1", "port": 8728, "created_at": now}],
        )
        conn.execute(
            insert(Plan),
            [
                {
                    "name": name,
                    "download_bps": 10_000_000,
                    "upload_bps": 5_000_000,
                    "price_minor": price,
                    "currency": "USD",
                    "cycle": PlanCycle.MONTHLY,
                    "prepaid": False,
                    "setup_fee_minor": 0,
                    "tax_rate": Decimal(tax),
                    "tax_inclusive": False,
                    "active": True,
                    "created_at": now,
                }
                for name, price, tax in (("home-10", 2000, "0"), ("home-30", 3000, "0.16"), ("biz-100", 9900, "0"))
            ],
        )
        router_id = conn.scalar(select(Router.id))
        plan_ids = list(conn.scalars(select(Plan.id).order_by(Plan.id)))
        for first in range(0, services, 10_000):
            count = min(10_000, services - first)
            conn.execute(
                insert(Customer), [{"name": f"Customer {first + i + 1}", "created_at": now} for i in range(count)]
            )
        customer_ids = list(conn.scalars(select(Customer.id).order_by(Customer.id)))
        rows = []
        for index, customer_id in enumerate(customer_ids):
            n = index + 1
            rows.append(
                {
                    "customer_id": customer_id,
                    "plan_id": plan_ids[index % 3],
                    "router_id": router_id,
                    "connection_type": ConnectionType.STATIC,
                    "ipv4": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                    "state": ServiceState.ACTIVE,
                    "state_since": now,
                    "started_on": START,
                    "created_at": now,
                }
            )
            if len(rows) == 10_000:
                conn.execute(insert(Service), rows)
                rows = []
        if rows:
            conn.execute(insert(Service), rows)


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Invoice, InvoiceLine, LedgerEntry)
        )


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"edgebill_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(backend: str, services: int, batch: int, *, dunning: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        settings = write_config(Path(tmp), url)
        engine = make_engine(url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            seed(engine, services)
            seeded = time.perf_counter() - started
            started = time.perf_counter()
            first = run_billing(engine, settings, as_of=AS_OF, batch_size=batch)
            run_s = time.perf_counter() - started
            after_first = counts(engine)
            started = time.perf_counter()
            again = run_billing(engine, settings, as_of=AS_OF, batch_size=batch)
            rerun_s = time.perf_counter() - started
            after_again = counts(engine)
            if dunning:
                started = time.perf_counter()
                dunned = run_dunning(engine, settings, as_of=DUNNING_DAY)
                dunning_s = time.perf_counter() - started
                started = time.perf_counter()
                quiet = run_dunning(engine, settings, as_of=DUNNING_DAY)
                quiet_s = time.perf_counter() - started
        finally:
            engine.dispose()
    assert not first.errors and len(first.invoices) == services, first.errors[:3]
    assert after_again == after_first and not again.invoices, "the re-run created documents"
    print(
        f"{backend:<10} services={services:<7} seed={seeded:6.1f}s  billing run={run_s:6.1f}s "
        f"({services / run_s:,.0f} services/s, {after_first[0]:,} invoices, {after_first[2]:,} ledger rows)  "
        f"re-run={rerun_s:6.1f}s (created {after_again[0] - after_first[0]} invoices)"
    )
    if dunning:
        changed = dunned.to_json()["services_changed"]
        unchanged = quiet.to_json()["services_changed"]
        print(
            f"{backend:<10} dunning, every customer overdue: {dunning_s:6.1f}s ({changed:,} services throttled)  "
            f"again: {quiet_s:6.1f}s ({unchanged} changed)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="customers per transaction")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--dunning", action="store_true", help="also time a dunning run with every customer overdue")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        bench(backend, args.services, args.batch, dunning=args.dunning)


if __name__ == "__main__":
    main()
