"""A dashboard over a seeded database (both backends), with an admin, a support user and an API token."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings, load_settings
from daemon.db import session_factory, upgrade
from daemon.db.models import (
    ApiToken,
    AuditEntry,
    Customer,
    Invoice,
    LedgerEntry,
    Payment,
    Plan,
    RouterOp,
    Service,
    User,
)
from daemon.security import SecretBox
from daemon.services import customers, plans, routers, services, users
from web import create_app

ADMIN_PASSWORD = "correct horse battery"
SUPPORT_PASSWORD = "support staff password"
PPPOE_PASSWORD = "pppoe-secret-never-shown"


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    sessions: sessionmaker[Session]
    customer_id: int
    service_id: int
    static_service_id: int
    token: str


@pytest.fixture
def seeded(engine: Engine, db_url: str, make_config: Callable[..., Path]) -> Seeded:
    settings = load_settings(make_config(database_url=db_url))
    upgrade(engine)
    sessions = session_factory(engine)
    box = SecretBox(settings.security.fernet_keys())
    with sessions.begin() as s:
        routers.sync_routers(s, settings)
        users.create_user(s, "test", "admin", ADMIN_PASSWORD, role="admin")
        users.create_user(s, "test", "support", SUPPORT_PASSWORD, role="support")
        token = users.create_token(s, "test", "admin", "monitoring").token
        plans.add_plan(s, "test", settings, name="home-10", download="10M", upload="5M", price="30.00")
        cust = customers.add_customer(s, "test", name="Ada Lovelace", email="ada@example.net")
        svc = services.add_service(
            s,
            "test",
            box,
            customer_id=cust.id,
            plan_name="home-10",
            router_name="core1",
            started_on=date(2026, 1, 1),
            pppoe_login="ada",
            pppoe_password=PPPOE_PASSWORD,
        )
        static = services.add_service(
            s,
            "test",
            box,
            customer_id=cust.id,
            plan_name="home-10",
            router_name="edge2",
            started_on=date(2026, 1, 1),
            ipv4="100.64.0.7",
        )
    return Seeded(settings, sessions, cust.id, svc.id, static.id, token)


def make_app(seeded: Seeded, **web: Any) -> Flask:
    """The application over the seeded database, with ``[web]`` settings replaced by ``web``."""
    settings = dataclasses.replace(seeded.settings, web=dataclasses.replace(seeded.settings.web, **web))
    return create_app(settings, sessions=seeded.sessions, test_config={"TESTING": True})


#: The tables a refused request must not write to.
WATCHED_TABLES = (
    Customer,
    Service,
    Payment,
    Plan,
    Invoice,
    LedgerEntry,
    AuditEntry,
    RouterOp,
    User,
    ApiToken,
)


def row_counts(seeded: Seeded) -> dict[str, int]:
    """The number of rows of each watched table, to show that a refused request wrote nothing."""
    with seeded.sessions() as s:
        return {
            model.__tablename__: int(s.scalar(select(func.count()).select_from(model)) or 0) for model in WATCHED_TABLES
        }


@pytest.fixture
def app(seeded: Seeded) -> Flask:
    return make_app(seeded)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    return field_of(client, path, "csrf")


def field_of(client: FlaskClient, path: str, name: str) -> str:
    """The value of the hidden form field ``name`` on the page at ``path``."""
    page = client.get(path).get_data(as_text=True)
    marker = f'name="{name}" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def payment_form(client: FlaskClient, path: str, **fields: str) -> dict[str, str]:
    """The counter payment form of the customer page at ``path``, with its tokens, filled with ``fields``."""
    return {"csrf": csrf_of(client, path), "submission": field_of(client, path, "submission"), **fields}


def sign_in(client: FlaskClient, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    response = client.post("/login", data={"csrf": csrf_of(client), "username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def admin(client: FlaskClient) -> Iterator[FlaskClient]:
    sign_in(client)
    yield client
