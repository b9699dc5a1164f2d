"""Making drivers: :func:`create` makes one for a router, :class:`RouterPool` keeps one per router for a process.

A one-shot command (``edgebill reconcile``, ``edgebill router check``) uses ``with create(params) as router:``:
the driver logs in on entry and out on exit, and what it cached goes with it. The daemon owns a
:class:`RouterPool` for its whole life: every run for a router gets the same driver, so its session (one SSH
connection per Linux gateway, one API login per RouterOS router) and its caches (what the last read parsed,
what the last plan rendered) outlive the run; a session lost meanwhile is reopened by the driver on next use.

Both fit :data:`DriverFactory`, which is what the reconcile engine and the poller take:
``with factory(params) as router: ...``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Final, Self

from drivers.base import Driver, DriverError, RouterParams

log = logging.getLogger(__name__)

#: Gives a router's driver for one use: ``with factory(params) as router:``. :func:`create` makes a new driver
#: each time (open on entry, closed on exit); :meth:`RouterPool.lease` lends the one its pool keeps.
DriverFactory = Callable[[RouterParams], AbstractContextManager[Driver]]

#: Router kind -> "module:Class" of its driver. Imported on first use so that a gateway-only installation never
#: loads the RouterOS client, and the other way round.
DRIVERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "mikrotik": "drivers.mikrotik:MikrotikDriver",
        "linux": "drivers.linux:LinuxTcDriver",
    }
)


def create(params: RouterParams) -> Driver:
    """A closed driver for ``params.kind``; open it with ``with create(params) as router:``.

    Raises ``ValueError`` for a kind no driver serves, or settings the driver refuses.
    """
    try:
        target = DRIVERS[params.kind]
    except KeyError:
        raise ValueError(f"unknown router kind {params.kind!r}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    driver: Driver = cls(params)
    return driver


@dataclass
class _Kept:
    """One router's driver in a pool, made from ``params``; ``opened`` once a login succeeded."""

    params: RouterParams
    driver: Driver
    opened: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class RouterPool:
    """One driver per router, kept open with its session and caches until :meth:`close`.

    ``with pool.lease(params) as router:`` lends the router's driver, logging it in on first use (and again
    after a failed login); leaving the block leaves it open for the next run. Runs of different routers, and a
    reconcile and a poll of the same router, may lease at once from several threads: drivers serve concurrent
    calls (see :class:`drivers.base.Driver`). A router whose settings changed gets a new driver; the old one
    is closed. Use the pool as a context manager, or call :meth:`close` when the process stops.
    """

    def __init__(self, factory: Callable[[RouterParams], Driver] = create) -> None:
        self._factory = factory
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()

    def lease(self, params: RouterParams) -> _Lease:
        """The driver kept for ``params.name``, made now when there is none (``ValueError`` as :func:`create`).

        The driver is opened when the lease is entered, and stays open when it is left.
        """
        with self._lock:
            kept = self._kept.get(params.name)
            stale = kept if kept is not None and kept.params != params else None
            if kept is None or stale is not None:
                kept = self._kept[params.name] = _Kept(params, self._factory(params))
        if stale is not None:
            log.info("router %s: settings changed, closing its old session", params.name)
            stale.driver.close()
        return _Lease(kept)

    def close(self) -> None:
        """Close every driver's session and forget the drivers (a later lease makes a new one)."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for k in kept:
            try:
                k.driver.close()
            except DriverError as exc:
                log.warning("closing the session to %s: %s", k.params.name, exc)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Lease(AbstractContextManager[Driver]):
    """One use of a kept driver: opens it on entry when it is not open yet, leaves it open on exit."""

    def __init__(self, kept: _Kept) -> None:
        self._kept = kept

    def __enter__(self) -> Driver:
        kept = self._kept
        with kept.lock:
            if not kept.opened:
                kept.driver.open()
                kept.opened = True
        return kept.driver

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
