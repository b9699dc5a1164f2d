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
