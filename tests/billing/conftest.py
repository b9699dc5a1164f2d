"""Fixtures for billing: settings on the ``db_url`` backend, and a small world of plans and customers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.config import Settings, load_settings
from daemon.db import session_factory
from daemon.services import customers, plans, routers
from daemon.services import services as subs
from tests.conftest import MakeConfig

ACTOR = "test"

DUNNING = """
[dunning]
[[dunning.steps]]
name = "reminder"
days_past_due = 1
action = "remind"
email_template = "reminder"

[[dunning.steps]]
name = "slow-down"
days_past_due = 10
action = "throttle"
throttle_rate = "1M/512k"
min_amount = "5.00"

[[dunning.steps]]
name = "cut-off"
days_past_due = 20
action = "suspend"
email_template = "suspended"
"""


class World:
    """Builds customers, plans and services in one session; ``commit()`` between steps."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._ips = itertools.count(1)
        routers.sync_routers(session, settings)

    def plan(self, name: str, price: str, **fields: Any) -> str:
        plans.add_plan(
            self.session, ACTOR, self.settings, name=name, download="10M", upload="5M", price=price, **fields
        )
        return name

    def customer(
        self, name: str = "Ana Lima", *, email: str | None = "ana@example.net", tags: tuple[str, ...] = ()
    ) -> int:
        return customers.add_customer(self.session, ACTOR, name=name, email=email, tags=tags).id

    def service(self, customer_id: int, plan: str, started_on: date) -> int:
        n = next(self._ips)
        ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        record = subs.add_service(
            self.session,
            ACTOR,
            self.settings,
            customer_id=customer_id,
            plan_name=plan,
            router_name="core1",
            started_on=started_on,
            ipv4=ip,
        )
        return record.id


@pytest.fixture
def make_settings(make_config: MakeConfig, db_url: str) -> Any:
    def make(*, billing: dict[str, Any] | None = None, extra: str = DUNNING, name: str = "edgebill.toml") -> Settings:
        return load_settings(make_config(database_url=db_url, billing=billing, extra=extra, name=name))

    return make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    settings: Settings = make_settings()
    return settings


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose work the test commits (the runs open their own transactions on ``engine``)."""
    with session_factory(engine)() as session:
        yield session


@pytest.fixture
def world(db: Session, settings: Settings) -> World:
    return World(db, settings)
