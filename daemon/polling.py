"""Pull per-subscriber traffic counters from the routers and store them as usage samples.

A router counts bytes per session (RouterOS) or per class (tc); its counters restart when a session redials, a
class is recreated or the router reboots. Each reading is stored with the bytes since the previous one: when the
counter went down, or the driver reports a new epoch, the counter restarted and the whole reading is new traffic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import drivers
from daemon.config import Settings
from daemon.db.models import Router, Service, UsageSample, utcnow
from drivers import DriverFactory
from drivers.base import DriverError
from drivers.models import CounterSample
from policies.desired import ConnectionType, ServiceState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollReport:
    router: str
    samples: int
    unmatched: int
    error: str | None = None


def subscriber_key(service: Service) -> str:
    """The key a driver reports a service's counters under (see ``drivers.models.SubscriberSpec``)."""
    if service.connection_type is ConnectionType.PPPOE and service.pppoe_login:
        return service.pppoe_login
    return f"svc-{service.id}"


def counter_delta(previous: int | None, current: int, *, restarted: bool) -> int | None:
    """Bytes since the previous reading; ``None`` for the first one. A restarted counter counts from zero."""
    if previous is None:
        return None
    if restarted or current < previous:
        return current
    return current - previous


def record_samples(session: Session, router_id: int, samples: tuple[CounterSample, ...], epochs: dict[str, str]) -> int:
    """Store ``samples`` for the services of ``router_id``; returns how many matched a service.

    ``epochs`` maps subscriber key -> epoch seen at the previous poll (kept by the caller across polls); it is
    updated in place.
    """
    services = session.scalars(
        select(Service).where(Service.router_id == router_id, Service.state != ServiceState.TERMINATED)
    ).all()
    by_key = {subscriber_key(s): s for s in services}
    # The previous reading of every service on the router, in one query (samples are appended in time order).
    latest = (
        select(func.max(UsageSample.id))
        .join(Service, Service.id == UsageSample.service_id)
        .where(Service.router_id == router_id)
        .group_by(UsageSample.service_id)
    )
    previous = {u.service_id: u for u in session.scalars(select(UsageSample).where(UsageSample.id.in_(latest)))}
    matched = 0
    for sample in samples:
        svc = by_key.get(sample.key)
        if svc is None:
            continue
        matched += 1
        last = previous.get(svc.id)
        restarted = epochs.get(sample.key, sample.epoch) != sample.epoch
        epochs[sample.key] = sample.epoch
        # The router's "in" is what the subscriber sent; the sample's "in" is what the subscriber received.
        down, up = sample.bytes_out, sample.bytes_in
        session.add(
            UsageSample(
                service_id=svc.id,
                taken_at=sample.taken_at,
                bytes_in=down,
                bytes_out=up,
                delta_in=counter_delta(last.bytes_in if last else None, down, restarted=restarted),
                delta_out=counter_delta(last.bytes_out if last else None, up, restarted=restarted),
            )
        )
    return matched


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
            router_id = session.scalars(select(Router.id).where(Router.name == name)).one()
            matched = record_samples(session, router_id, samples, epochs)
            row = session.get(Router, router_id)
            if row is not None:
                row.last_seen_at = utcnow()
        log.info("polled %s: %d counters, %d matched a service", name, len(samples), matched)
        return PollReport(name, matched, len(samples) - matched)

    def poll_all(self) -> list[PollReport]:
        return [self.poll_router(r.name) for r in self.settings.routers]
