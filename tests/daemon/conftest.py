"""What the daemon's tests share: an emulated router ``core1`` as ``make_config`` configures it, and a site on it."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings, load_settings
from daemon.db import session_factory, upgrade
from lab.routeros import RouterOSEmulator
from tests.lab_setup import seed_subscriber

ROUTER_PASSWORD = "router-api-password"  # what tests/conftest.py's make_config writes


@pytest.fixture
def router() -> Iterator[RouterOSEmulator]:
    """An emulated router whose CPEs redial after a second, on the API password ``make_config`` writes."""
    with RouterOSEmulator(
        users={"edgebill": ROUTER_PASSWORD}, redial_delay=1.0, default_remote_range="100.64.0.0/24"
    ) as emu:
        yield emu


@pytest.fixture
def setup(
    router: RouterOSEmulator, engine: Engine, db_url: str, make_config: Callable[..., Path]
) -> tuple[Settings, sessionmaker[Session], int]:
    """Settings for ``core1`` on ``db_url`` (migrated), their sessions, and the id of one seeded subscriber."""
    config = make_config(
        database_url=db_url,
        routers=[{"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": router.port, "timeout": "5s"}],
    )
    loaded = load_settings(config)
    # Faster than the configuration allows, so that a test sees several runs.
    fast = dataclasses.replace(
        loaded.scheduler, reconcile_interval=timedelta(seconds=1), poll_interval=timedelta(seconds=1)
    )
    settings = dataclasses.replace(loaded, scheduler=fast)
    upgrade(engine)
    sessions = session_factory(engine)
    return settings, sessions, seed_subscriber(sessions, settings)


def secret(router: RouterOSEmulator, name: str) -> dict[str, str] | None:
    """The router's PPPoE secret ``name``, or ``None``."""
    return next((row for row in router.items("/ppp/secret") if row.get("name") == name), None)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    """A datagram socket bound where ``NOTIFY_SOCKET`` will point, as systemd's would be."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.5)
    try:
        yield sock, path
    finally:
        sock.close()


def receive_until(sock: socket.socket, wanted: Callable[[list[str]], bool], timeout: float = 30.0) -> list[str]:
    """The messages received (one string per datagram) once ``wanted(messages)`` holds."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while not wanted(messages):
        if time.monotonic() > deadline:
            pytest.fail(f"systemd notifications timed out, received {messages}")
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return messages
