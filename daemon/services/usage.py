"""Usage samples: the traffic counters polled from the routers, stored, and summed over billing periods.

A router counts bytes per session (RouterOS) or per class (tc); its counters restart when a session redials, a
class is recreated or the router reboots. Each reading is stored with the bytes since the previous one: when the
counter went down, or the driver reports a new epoch, the counter restarted and the whole reading is new traffic.
:func:`period_usage` sums those deltas over a period, for quotas, overage and the support diagnosis.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config import BillingSettings
from daemon.db.models import Router, Service, UsageSample, utcnow
from drivers.models import CounterSample
from policies.desired import ConnectionType, ServiceState
from policies.periods import Period

__all__ = ["counter_delta", "period_usage", "record_poll", "record_samples", "subscriber_key"]


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


def record_poll(session: Session, router_name: str, samples: tuple[CounterSample, ...], epochs: dict[str, str]) -> int:
    """Store one poll of router ``router_name`` (:func:`record_samples`) and mark the router seen now; returns how
    many samples matched a service."""
    router_id = session.scalars(select(Router.id).where(Router.name == router_name)).one()
    matched = record_samples(session, router_id, samples, epochs)
    row = session.get(Router, router_id)
    if row is not None:
        row.last_seen_at = utcnow()
    return matched


def _midnight(day: date, billing: BillingSettings) -> datetime:
    return datetime.combine(day, time(0), tzinfo=billing.timezone).astimezone(UTC)


def period_usage(session: Session, billing: BillingSettings, service_id: int, period: Period) -> int:
    """Bytes the service moved (both directions) in ``period``, from its samples' deltas."""
    total = session.scalar(
        select(
            func.coalesce(func.sum(func.coalesce(UsageSample.delta_in, 0) + func.coalesce(UsageSample.delta_out, 0)), 0)
        ).where(
            UsageSample.service_id == service_id,
            UsageSample.taken_at >= _midnight(period.start, billing),
            UsageSample.taken_at < _midnight(period.end, billing),
        )
    )
    return int(total or 0)
