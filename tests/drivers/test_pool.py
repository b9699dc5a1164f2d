"""The router pool the daemon owns: one driver per router, its session kept from one run to the next."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from drivers import RouterPool
from drivers.base import AuthError, Driver
from drivers.mikrotik import MikrotikDriver
from lab.routeros import RouterOSEmulator
from tests.drivers.contract import DriverContract
from tests.lab_setup import write_secret
from tests.routeros import USERS, MakeParams
from tests.support import wait_for


def test_every_lease_of_a_router_gets_its_one_open_driver(emulator: RouterOSEmulator, params: MakeParams) -> None:
    settings = params(emulator.port)
    with RouterPool() as pool:
        seen: list[Driver] = []
        for _ in range(3):
            with pool.lease(settings) as router:
                router.facts()
                seen.append(router)
        assert all(d is seen[0] for d in seen) and isinstance(seen[0], MikrotikDriver)
        assert emulator.connection_count() == 1
        # New settings for the router: a new driver, and the old session closes.
        with pool.lease(replace(settings, timeout=timedelta(seconds=4))) as router:
            assert router is not seen[0]
            router.facts()
        wait_for(lambda: emulator.connection_count() == 1, "the old session to close")
    wait_for(lambda: emulator.connection_count() == 0, "the pool's session to close")


def test_a_pooled_driver_serves_two_threads_at_once(emulator: RouterOSEmulator, params: MakeParams) -> None:
    settings = params(emulator.port)
    errors: list[BaseException] = []

    def run(pool: RouterPool) -> None:
        try:
            for _ in range(20):
                with pool.lease(settings) as router:
                    router.read_state()
                    router.counters()
        except BaseException as exc:  # reported to the test's thread below
            errors.append(exc)

    with RouterPool() as pool:
        threads = [threading.Thread(target=run, args=(pool,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_a_failed_login_is_tried_again_on_the_next_lease(emulator: RouterOSEmulator, params: MakeParams) -> None:
    settings = params(emulator.port, secret="nope")
    assert settings.password_file is not None
    with RouterPool() as pool:
        with pytest.raises(AuthError), pool.lease(settings):
            pass
        write_secret(settings.password_file, USERS["admin"])
        with pool.lease(settings) as router:
            assert router.facts().identity


def test_a_driver_suite_must_provide_every_fixture() -> None:
    """A new driver's suite that forgets a fixture is refused, rather than silently not collected."""
    with pytest.raises(TypeError, match="must provide the fixtures desired, changed, scoped_change, unowned"):

        class TestHalfDone(DriverContract):
            @pytest.fixture
            def driver(self) -> Driver:
                raise AssertionError("never used")
