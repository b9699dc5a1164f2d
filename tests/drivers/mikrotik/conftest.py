"""Fixtures: an emulated RouterOS router on TCP and a driver connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from drivers.mikrotik import MikrotikDriver
from lab.routeros import RouterOSEmulator

USERS = {"admin": "secret"}
#: Where sessions get their address when edgebill's profile names none: on a router, the pool of the PPPoE
#: server's default profile, which the admin configures (edgebill's profiles set only limits and lists).
POOL = "100.64.0.0/10"


@dataclass(frozen=True)
class Params:
    """Router settings as :class:`drivers.base.RouterParams` describes them."""

    port: int
    name: str = "edge1"
    kind: str = "mikrotik"
    host: str = "127.0.0.1"
    username: str = "admin"
    tls: bool = False
    tls_verify: bool = True
    encoding: str = "utf-8"
    timeout: timedelta = timedelta(seconds=5)
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    trust_on_first_use: bool = False
    interface: str | None = None
    upload_ifb: str | None = None
    leaf_qdisc: str = "fq_codel"
    subnets: tuple[IPv4Network, ...] = ()
    secret: str = "secret"

    def password(self) -> str:
        return self.secret


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    with RouterOSEmulator(users=USERS, port=0, seed=0, default_remote_range=POOL) as emu:
        yield emu


@pytest.fixture
def driver(emulator: RouterOSEmulator) -> Iterator[MikrotikDriver]:
    with MikrotikDriver(Params(emulator.port)) as d:
        yield d
