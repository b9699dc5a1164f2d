"""Router drivers behind one contract (:mod:`drivers.base`), with plain values from :mod:`drivers.models`.

:func:`create` makes a driver for one use; :class:`RouterPool` keeps one per router, with its session and caches,
for the life of the process that owns it (the daemon). See :mod:`drivers.pool`.
"""

from drivers.pool import DRIVERS, DriverFactory, RouterPool, create

__all__ = ["DRIVERS", "DriverFactory", "RouterPool", "create"]
