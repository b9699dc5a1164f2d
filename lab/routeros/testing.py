"""Helpers for tests: start one or several emulated routers for the duration of a ``with`` block.

from lab.routeros.testing import running_router, running_routers

with running_router(users={"admin": "pw"}) as router:
    api = librouteros.connect("127.0.0.1", "admin", "pw", port=router.port)

with running_routers(3, seed=7) as routers:   # seeds 7, 8, 9; identities router1..router3
    ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from lab.routeros.emulator import RouterOSEmulator

DEFAULT_USERS = {"admin": "admin"}


@contextmanager
def running_router(**options: Any) -> Iterator[RouterOSEmulator]:
    """Start one emulator (keyword arguments as for :class:`RouterOSEmulator`), stop it on exit."""
    options.setdefault("users", dict(DEFAULT_USERS))
    emulator = RouterOSEmulator(**options)
    with emulator:
        yield emulator


@contextmanager
def running_routers(count: int, *, seed: int = 0, **options: Any) -> Iterator[list[RouterOSEmulator]]:
    """Start ``count`` emulators on their own ports with distinct seeds and identities."""
    if count < 1:
        raise ValueError("count must be at least 1")
    with ExitStack() as stack:
        routers: list[RouterOSEmulator] = []
        for index in range(count):
            per_router = dict(options)
            per_router.setdefault("identity", f"router{index + 1}")
            per_router.setdefault("users", dict(DEFAULT_USERS))
            routers.append(stack.enter_context(running_router(seed=seed + index, **per_router)))
        yield routers
