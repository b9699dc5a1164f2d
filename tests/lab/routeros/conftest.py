from __future__ import annotations

from collections.abc import Iterator

import librouteros
import pytest

from lab.routeros import RouterOSEmulator
from lab.routeros.testing import running_router

USER = "admin"
PASSWORD = "s3cret"


@pytest.fixture
def router() -> Iterator[RouterOSEmulator]:
    with running_router(users={USER: PASSWORD}, redial_delay=5.0) as emulator:
        yield emulator


@pytest.fixture
def api(router: RouterOSEmulator) -> Iterator[librouteros.api.Api]:
    connection = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=5)
    try:
        yield connection
    finally:
        connection.close()
