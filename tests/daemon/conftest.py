"""What the daemon's tests share: an emulated router ``core1`` as ``make_config`` configures it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.routeros import RouterOSEmulator

ROUTER_PASSWORD = "router-api-password"  # what tests/conftest.py's make_config writes


@pytest.fixture
def router() -> Iterator[RouterOSEmulator]:
    """An emulated router whose CPEs redial after a second, on the API password ``make_config`` writes."""
    with RouterOSEmulator(
        users={"edgebill": ROUTER_PASSWORD}, redial_delay=1.0, default_remote_range="100.64.0.0/24"
    ) as emu:
        yield emu


def secret(router: RouterOSEmulator, name: str) -> dict[str, str] | None:
    """The router's PPPoE secret ``name``, or ``None``."""
    return next((row for row in router.items("/ppp/secret") if row.get("name") == name), None)
