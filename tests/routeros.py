"""Fixtures for everything that talks to an emulated RouterOS router on TCP (driver and engine tests).

* ``emulator``: a :class:`~lab.routeros.RouterOSEmulator` with the user in :data:`USERS` and :data:`POOL`.
* ``params``: builds real :class:`daemon.config.RouterSettings` for such a router (:class:`MakeParams`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from daemon.config import RouterSettings
from lab.routeros import RouterOSEmulator
from tests.lab_setup import router_settings, write_secret

USERS = {"admin": "secret"}
#: Where sessions get their address when edgebill's profile names none: on a router, the pool of the PPPoE
#: server's default profile, which the admin configures (edgebill's profiles set only limits and lists).
POOL = "100.64.0.0/10"


class MakeParams(Protocol):
    """Builds the settings of a router at ``127.0.0.1:port`` that logs in as ``admin`` with ``secret``."""

    def __call__(self, port: int, *, secret: str = ..., **options: Any) -> RouterSettings: ...


@pytest.fixture
def params(tmp_path: Path) -> MakeParams:
    """Real :class:`daemon.config.RouterSettings` (5 s timeout unless given), the password in a 0600 file."""
    files = itertools.count(1)

    def make(port: int, *, secret: str = USERS["admin"], **options: Any) -> RouterSettings:
        options.setdefault("timeout", timedelta(seconds=5))
        password_file = write_secret(tmp_path / f"router{next(files)}.pw", secret)
        return router_settings(port, password_file, **options)

    return make


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    with RouterOSEmulator(users=USERS, port=0, seed=0, default_remote_range=POOL) as emu:
        yield emu
