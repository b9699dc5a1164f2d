"""Router drivers behind one contract (:mod:`drivers.base`), with plain values from :mod:`drivers.models`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from drivers.base import Driver, RouterParams

#: Anything that makes a closed driver for a router; :func:`create` is the one the daemon uses.
DriverFactory = Callable[[RouterParams], Driver]

#: Router kind -> "module:Class" of its driver. Imported on first use so that a gateway-only installation never
#: loads the RouterOS client, and the other way round.
DRIVERS = {
    "mikrotik": "drivers.mikrotik:MikrotikDriver",
    "linux": "drivers.linux:LinuxTcDriver",
}


def create(params: RouterParams) -> Driver:
    """A closed driver for ``params.kind``; open it with ``with create(params) as router:``."""
    try:
        target = DRIVERS[params.kind]
    except KeyError:
        raise ValueError(f"unknown router kind {params.kind!r}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    driver: Driver = cls(params)
    return driver


_keep_sessions = False
_releasers: list[Callable[[], None]] = []


def keep_sessions(keep: bool) -> None:
    """Keep router sessions open from one driver to the next (the daemon does), or let each driver close its own
    (one-shot commands; the default). Turning it off closes every session kept so far."""
    global _keep_sessions
    _keep_sessions = keep
    if not keep:
        for release in _releasers:
            release()


def sessions_kept() -> bool:
    """Whether drivers leave their sessions open for the next driver of the same router."""
    return _keep_sessions


def on_release(release: Callable[[], None]) -> None:
    """Register a driver module's function that closes the sessions it keeps (see :func:`keep_sessions`)."""
    _releasers.append(release)
