"""Pull per-subscriber traffic counters from the routers and store them as usage samples.

:class:`Poller` reads each router's counters with its driver and hands them to
:func:`daemon.services.usage.record_poll`, which stores each reading with the bytes since the previous one. The
poller keeps each router's counter epochs between polls, so that a restarted counter is told from new traffic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

import drivers
from daemon.config import Settings
from daemon.services.usage import record_poll
from drivers import DriverFactory
from drivers.base import DriverError

__all__ = ["PollReport", "Poller"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollReport:
    router: str
    samples: int
    unmatched: int
    error: str | None = None


class Poller:
    """Polls every router in turn; keeps the counter epochs between polls."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], factory: DriverFactory = drivers.create
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.factory = factory
        self._epochs: dict[str, dict[str, str]] = {}

    def poll_router(self, name: str) -> PollReport:
        params = self.settings.router(name)
        epochs = self._epochs.setdefault(name, {})
        try:
            with self.factory(params) as router:
                samples = router.counters()
        except DriverError as exc:
            log.warning("polling %s failed: %s", name, exc)
            return PollReport(name, 0, 0, str(exc))
        with self.sessions.begin() as session:
            matched = record_poll(session, name, samples, epochs)
        log.info("polled %s: %d counters, %d matched a service", name, len(samples), matched)
        return PollReport(name, matched, len(samples) - matched)

    def poll_all(self) -> list[PollReport]:
        return [self.poll_router(r.name) for r in self.settings.routers]
