"""Fixtures: a MikroTik driver connected to the emulated router (see :mod:`tests.routeros`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.mikrotik import MikrotikDriver
from lab.routeros import RouterOSEmulator
from tests.routeros import MakeParams


@pytest.fixture
def driver(emulator: RouterOSEmulator, params: MakeParams) -> Iterator[MikrotikDriver]:
    with MikrotikDriver(params(emulator.port)) as d:
        yield d
