"""``edgebill demo``: the whole system on one machine, with emulated routers and an SQLite file.

The first run creates, in the data folder, a configuration with two emulated RouterOS routers, key files, an
admin password, and a small ISP (plans, customers, PPPoE and static services); later runs reuse them. Then it
starts the emulated routers (their configuration survives restarts in state files, as a router keeps its own),
the daemon's scheduler (which pushes the services to the routers within seconds and polls their counters), and the
dashboard, and prints where to sign in. Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from waitress.server import create_server

from daemon.billing.account import run_dunning
from daemon.billing.payments import receive_payment
from daemon.billing.run import run_billing
from daemon.config import Settings, load_settings
from daemon.config.secrets import make_private_dir, write_private
from daemon.db import make_engine, session_factory, upgrade
from daemon.db.models import utcnow
from daemon.scheduler import Daemon
from daemon.security import SecretBox, create_key_file
from daemon.services import customers, invoices, plans, services, users
from daemon.services.routers import sync_routers
from lab.routeros import RouterOSEmulator
from web import create_app

log = logging.getLogger(__name__)

ACTOR = "demo"
DEMO_ROUTERS = ("core1", "tower2")


@dataclass(frozen=True)
class DemoPlan:
    name: str
    download: str
    upload: str
    price: str


PLANS = (
    DemoPlan("home-10", "10M", "5M", "25.00"),
    DemoPlan("home-25", "25M", "10M", "39.00"),
    DemoPlan("business-100", "100M", "50M", "120.00"),
)

CUSTOMERS = (
    ("Ada Lovelace", "ada@example.net", "home-25"),
    ("Grace Hopper", "grace@example.net", "business-100"),
    ("Alan Turing", "alan@example.net", "home-10"),
    ("Katherine Johnson", "katherine@example.net", "home-25"),
    ("Edsger Dijkstra", "edsger@example.net", "home-10"),
    ("Barbara Liskov", "barbara@example.net", "home-25"),
    ("Donald Knuth", "donald@example.net", "business-100"),
    ("Margaret Hamilton", "margaret@example.net", "home-10"),
    ("Claude Shannon", "claude@example.net", "home-25"),
    ("Radia Perlman", "radia@example.net", "home-10"),
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _secret_file(path: Path, content: str) -> None:
    write_private(path, (content + "\n").encode("utf-8"))


def write_demo_config(data_dir: Path, *, web_port: int | None = None) -> Path:
    """Create ``edgebill.toml`` and its key files in ``data_dir`` (only what does not exist yet)."""
    make_private_dir(data_dir)  # the database in it holds password hashes and customer data
    config = data_dir / "edgebill.toml"
    if config.exists():
        return config
    secrets_dir = data_dir / "secrets"
    _secret_file(secrets_dir / "web.key", secrets.token_hex(32))
    create_key_file(secrets_dir / "data.key")
    _secret_file(secrets_dir / "routers.password", secrets.token_urlsafe(18))
    if web_port is None:
        web_port = 8080 if port_free("127.0.0.1", 8080) else free_port()
    routers = "\n".join(
        f"""
[[routers]]
name = "{name}"
kind = "mikrotik"
host = "127.0.0.1"
port = {free_port()}
username = "edgebill"
password_file = "secrets/routers.password"
site = "Demo site {i + 1}"
timeout = "5s"
"""
        for i, name in enumerate(DEMO_ROUTERS)
    )
    write_private(
        config,
        f"""# edgebill demo configuration, written by `edgebill demo`. The routers are emulated on this machine.
[database]
url = "sqlite:///edgebill.db"

[web]
listen = "127.0.0.1:{web_port}"
secret_key_file = "secrets/web.key"
base_url = "http://127.0.0.1:{web_port}"

[security]
secret_key_file = "secrets/data.key"

[scheduler]
reconcile_interval = "30s"
poll_interval = "30s"

[billing]
currency = "USD"
timezone = "UTC"
due_days = 14

# Overdue accounts are slowed after a week and cut off after three.
[[dunning.steps]]
name = "throttle"
days_past_due = 7
action = "throttle"
throttle_rate = "2M/1M"

[[dunning.steps]]
name = "suspend"
days_past_due = 21
action = "suspend"
{routers}""".encode(),
    )
    return config


def ensure_admin(sessions: sessionmaker[Session], data_dir: Path) -> tuple[str, str]:
    """The admin's user name and password, creating both on the first run."""
    pw_file = data_dir / "secrets" / "admin.password"
    if not pw_file.exists():
        _secret_file(pw_file, secrets.token_urlsafe(12))
    password = pw_file.read_text(encoding="utf-8").strip()
    with sessions.begin() as session:
        if users.count_users(session) == 0:
            users.create_user(session, ACTOR, "admin", password, role="admin")
    return "admin", password


def seed(engine: Engine, sessions: sessionmaker[Session], settings: Settings) -> None:
    """A small ISP: three plans, ten customers with one service each, spread over the routers."""
    box = SecretBox(settings.security.fernet_keys())
    with sessions.begin() as session:
        if customers.count_customers(session):
            return
        for p in PLANS:
            plans.add_plan(session, ACTOR, settings, name=p.name, download=p.download, upload=p.upload, price=p.price)
        for i, (name, email, plan) in enumerate(CUSTOMERS):
            cust = customers.add_customer(session, ACTOR, name=name, email=email)
            router = DEMO_ROUTERS[i % len(DEMO_ROUTERS)]
            started = (utcnow() - timedelta(days=40 + 3 * i)).date()
            login = None if i % 5 == 4 else name.split()[0].lower()
            services.add_service(
                session,
                ACTOR,
                box,
                customer_id=cust.id,
                plan_name=plan,
                router_name=router,
                started_on=started,
                pppoe_login=login,
                pppoe_password=secrets.token_urlsafe(9) if login else None,
                ipv4=None if login else f"100.64.0.{10 + i}",
            )
    bill_and_collect(engine, sessions, settings)
    log.info("demo data created: %d plans, %d customers", len(PLANS), len(CUSTOMERS))


def bill_and_collect(engine: Engine, sessions: sessionmaker[Session], settings: Settings) -> None:
    """Invoice the months the demo customers have been connected, and take their payments.

    Everyone pays but the last two customers: one paid only their oldest invoice and is throttled by the
    dunning ladder, the other paid nothing and is suspended.
    """
    today = utcnow().astimezone(settings.billing.timezone).date()
    first_of_month = today.replace(day=1)
    history = sorted({(first_of_month - timedelta(days=31 * n)).replace(day=1) for n in (2, 1, 0)})
    for day in [*history, today]:  # the billing runs of the past months, as they would have happened
        run_billing(engine, settings, as_of=day, actor=ACTOR)
    with sessions.begin() as session:
        customer_ids = customers.customer_ids(session)
        for index, customer_id in enumerate(customer_ids):
            unpaid = sorted(
                invoices.list_invoices(session, customer_id=customer_id, status="open", kind="invoice"),
                key=lambda invoice: invoice.due_on,
            )
            paying = unpaid if index < len(customer_ids) - 2 else unpaid[:1] if index == len(customer_ids) - 2 else []
            for invoice in paying:
                receive_payment(
                    session,
                    ACTOR,
                    settings,
                    customer_id=customer_id,
                    amount=invoice.total,
                    method="bank",
                    reference=invoice.display_number,
                )
    run_dunning(engine, settings, as_of=today, actor=ACTOR)


@contextlib.contextmanager
def emulated_routers(settings: Settings, data_dir: Path) -> Iterator[None]:
    started: list[RouterOSEmulator] = []
    try:
        for r in settings.routers:
            if r.kind != "mikrotik" or r.host != "127.0.0.1":
                continue
            emu = RouterOSEmulator(
                users={r.username: r.password()},
                host=r.host,
                port=r.port,
                identity=r.name,
                seed=sum(map(ord, r.name)),
                state_file=data_dir / f"{r.name}.router.json",
                redial_delay=5.0,
                realtime=True,
                default_remote_range="100.64.128.0/17",  # sessions; statics are in 100.64.0.0/24
            )
            emu.start()
            started.append(emu)
            log.info("emulated RouterOS router %s on %s:%d", r.name, r.host, r.port)
        yield
    finally:
        for emu in started:
            emu.stop()


def run_demo(data_dir: Path) -> int:
    """Start everything and block until Ctrl-C."""
    data_dir = data_dir.resolve()
    settings = load_settings(write_demo_config(data_dir))
    engine = make_engine(settings.database.url)
    upgrade(engine)
    sessions = session_factory(engine)

    with sessions.begin() as session:
        sync_routers(session, settings)
    user, password = ensure_admin(sessions, data_dir)
    seed(engine, sessions, settings)

    with emulated_routers(settings, data_dir):
        daemon = Daemon(settings, sessions)
        server = create_server(
            create_app(settings, sessions=sessions),
            host=settings.web.host,
            port=settings.web.port,
            threads=4,
            max_request_body_size=2 * settings.web.max_request_bytes,
        )
        print(
            f"\nedgebill demo is running.\n"
            f"  dashboard: {settings.web.base_url}/\n"
            f"  sign in:   {user} / {password}\n"
            f"  data:      {data_dir} (configuration in edgebill.toml)\n"
            f"  CLI:       .venv/bin/edgebill --config {data_dir / 'edgebill.toml'} service list\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        web = threading.Thread(target=server.run, name="web", daemon=True)
        web.start()
        try:
            daemon.run_forever()
        finally:
            server.close()
    return 0
