"""Service plans: rates, price, billing cycle, quota and tax.

Plans are identified by name. A plan in use is never deleted; it is deactivated (no new services) instead.
The rules a plan obeys are those of :class:`policies.plans.PlanSpec`; this module reads plans as people type
them, stores them, and is the one place that turns a :class:`~daemon.db.models.Plan` row back into a
``PlanSpec`` (:func:`plan_spec`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.config import BillingSettings, Settings, parse_duration
from daemon.db.models import OverQuota, Plan, PlanCycle, Service
from daemon.services import _validate as check
from daemon.services import audit
from daemon.services._db import insert_unique
from daemon.services.errors import Conflict, Invalid, NotFound
from policies.money import Currency, Money, UnknownCurrency, currency
from policies.periods import AnchorMode, Schedule
from policies.plans import PlanError, PlanSpec, format_quota, parse_quota
from policies.rates import Burst, RateLimit, format_rate, parse_rate

__all__ = [
    "PlanFields",
    "PlanRecord",
    "add_plan",
    "create_plan",
    "get_plan",
    "list_plans",
    "load_plan",
    "plan_spec",
    "plans_by_id",
    "read_plan",
    "record_of",
    "schedule_for",
    "set_plan_active",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

#: Decimal places a stored tax rate keeps (``0.123456`` is 12.3456%).
TAX_RATE_PLACES = 6


@dataclass(frozen=True)
class PlanRecord:
    id: int
    name: str
    rate: RateLimit
    price: Money
    cycle: str
    prepaid: bool
    setup_fee: Money
    quota_bytes: int | None
    over_quota: str
    fair_use: RateLimit | None
    overage_price: Money | None
    tax_rate: Decimal
    tax_inclusive: bool
    active: bool
    created_at: datetime

    @property
    def currency(self) -> Currency:
        return self.price.currency

    def to_json(self) -> JsonDict:
        burst = self.rate.burst
        return {
            "id": self.id,
            "name": self.name,
            "download_bps": self.rate.download,
            "upload_bps": self.rate.upload,
            "download": format_rate(self.rate.download),
            "upload": format_rate(self.rate.upload),
            "burst": None
            if burst is None
            else {
                "download_bps": burst.download,
                "upload_bps": burst.upload,
                "threshold_download_bps": burst.threshold_download,
                "threshold_upload_bps": burst.threshold_upload,
                "download": format_rate(burst.download),
                "upload": format_rate(burst.upload),
                "threshold_download": format_rate(burst.threshold_download),
                "threshold_upload": format_rate(burst.threshold_upload),
                "time_s": burst.time_s,
            },
            "price": self.price.to_json(),
            "currency": self.price.currency.code,
            "cycle": self.cycle,
            "prepaid": self.prepaid,
            "setup_fee": self.setup_fee.to_json(),
            "quota_bytes": self.quota_bytes,
            "quota": None if self.quota_bytes is None else format_quota(self.quota_bytes),
            "over_quota": self.over_quota,
            "fair_use": None
            if self.fair_use is None
            else {
                "download_bps": self.fair_use.download,
                "upload_bps": self.fair_use.upload,
                "download": format_rate(self.fair_use.download),
                "upload": format_rate(self.fair_use.upload),
            },
            "overage_price": None if self.overage_price is None else self.overage_price.to_json(),
            "tax_rate": str(self.tax_rate.normalize()) if self.tax_rate else "0",
            "tax_inclusive": self.tax_inclusive,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
        }


def _rates(row: Plan) -> tuple[RateLimit, RateLimit | None]:
    """The row's plan rates (with their burst, if any) and its fair-use rates (``None`` when it has none)."""
    burst = None
    if row.burst_download_bps is not None:
        assert row.burst_upload_bps is not None and row.burst_time_s is not None
        assert row.burst_threshold_download_bps is not None and row.burst_threshold_upload_bps is not None
        burst = Burst(
            download=row.burst_download_bps,
            upload=row.burst_upload_bps,
            threshold_download=row.burst_threshold_download_bps,
            threshold_upload=row.burst_threshold_upload_bps,
            time_s=row.burst_time_s,
        )
    fair_use = None
    if row.fair_use_download_bps is not None and row.fair_use_upload_bps is not None:
        fair_use = RateLimit(row.fair_use_download_bps, row.fair_use_upload_bps)
    return RateLimit(row.download_bps, row.upload_bps, burst), fair_use


def record_of(row: Plan) -> PlanRecord:
    """The plan row as shown to people (CLI, dashboard, audit log)."""
    cur = currency(row.currency)
    rate, fair_use = _rates(row)
    return PlanRecord(
        id=row.id,
        name=row.name,
        rate=rate,
        price=Money(row.price_minor, cur),
        cycle=row.cycle.value,
        prepaid=row.prepaid,
        setup_fee=Money(row.setup_fee_minor, cur),
        quota_bytes=row.quota_bytes,
        over_quota=row.over_quota.value,
        fair_use=fair_use,
        overage_price=None if row.overage_price_minor is None else Money(row.overage_price_minor, cur),
        tax_rate=row.tax_rate,
        tax_inclusive=row.tax_inclusive,
        active=row.active,
        created_at=row.created_at,
    )


def plan_spec(row: Plan) -> PlanSpec:
    """The plan row as the policy value (rates, prices, cycle, quota rule and tax) that billing computes with.

    Only the parameter of the row's over-quota rule is carried over (fair-use rates when it throttles, the
    overage price when it charges). Raises :class:`~policies.plans.PlanError` for a row that breaks the plan
    rules, which :func:`create_plan` never stores.
    """
    cur = currency(row.currency)
    rate, fair_use = _rates(row)
    limited = row.quota_bytes is not None
    overage = None if row.overage_price_minor is None else Money(row.overage_price_minor, cur)
    return PlanSpec(
        name=row.name,
        rate=rate,
        price=Money(row.price_minor, cur),
        cycle="weekly" if row.cycle is PlanCycle.WEEKLY else "monthly",
        prepaid=row.prepaid,
        setup_fee=Money(row.setup_fee_minor, cur),
        quota_bytes=row.quota_bytes,
        over_quota="charge" if row.over_quota is OverQuota.CHARGE else "throttle",
        fair_use_rate=fair_use if limited and row.over_quota is OverQuota.THROTTLE else None,
        overage_price_per_gb=overage if limited and row.over_quota is OverQuota.CHARGE else None,
        tax_rate=row.tax_rate,
        tax_inclusive=row.tax_inclusive,
    )


def schedule_for(billing: BillingSettings, service: Service, plan: PlanSpec) -> Schedule:
    """The service's billing schedule: its plan's cycle, anchored on its start date (``[billing] anchor``)."""
    mode: AnchorMode = "anniversary" if billing.anchor == "anniversary" else "calendar"
    return Schedule(service.started_on, plan.cycle, mode)


def _check_storable(spec: PlanSpec) -> None:
    """What the database adds to the plan rules: tax rates are stored with 6 decimal places."""
    exponent = spec.tax_rate.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -TAX_RATE_PLACES:
        raise Invalid(f"tax rate {spec.tax_rate} has more than {TAX_RATE_PLACES} decimal places")


def create_plan(session: Session, actor: str, spec: PlanSpec) -> PlanRecord:
    """Store a plan (a :class:`~policies.plans.PlanSpec`, so already consistent).

    :class:`Conflict` when the name is taken, :class:`Invalid` when it cannot be stored exactly.
    """
    _check_storable(spec)
    check.plan_name(spec.name)
    if session.scalars(select(Plan.id).where(Plan.name == spec.name)).first() is not None:
        raise Conflict(f"plan {spec.name!r} already exists")
    burst = spec.rate.burst
    fair_use, overage = spec.fair_use_rate, spec.overage_price_per_gb
    row = Plan(
        name=spec.name,
        download_bps=spec.rate.download,
        upload_bps=spec.rate.upload,
        burst_download_bps=burst.download if burst else None,
        burst_upload_bps=burst.upload if burst else None,
        burst_threshold_download_bps=burst.threshold_download if burst else None,
        burst_threshold_upload_bps=burst.threshold_upload if burst else None,
        burst_time_s=burst.time_s if burst else None,
        price_minor=spec.price.minor,
        currency=spec.price.currency.code,
        cycle=PlanCycle(spec.cycle),
        prepaid=spec.prepaid,
        setup_fee_minor=spec.setup_fee.minor,
        quota_bytes=spec.quota_bytes,
        over_quota=OverQuota(spec.over_quota),
        fair_use_download_bps=fair_use.download if fair_use else None,
        fair_use_upload_bps=fair_use.upload if fair_use else None,
        overage_price_minor=overage.minor if overage else None,
        tax_rate=spec.tax_rate,
        tax_inclusive=spec.tax_inclusive,
        active=True,
    )
    insert_unique(session, row, f"plan {spec.name!r} already exists")
    result = record_of(row)
    audit.record(session, actor, "plan.add", "plan", None, result.to_json())
    log.info("plan %s added by %s", spec.name, actor)
    return result


def load_plan(session: Session, name: str) -> Plan:
    """The plan row called ``name``, or :class:`NotFound`."""
    row = session.scalars(select(Plan).where(Plan.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"plan {name!r} not found")
    return row


def plans_by_id(session: Session, plan_ids: Iterable[int]) -> dict[int, Plan]:
    """The rows of these plans, by id. A caller that holds the result while it works on many services finds each
    service's plan in the session without a query."""
    return {row.id: row for row in session.scalars(select(Plan).where(Plan.id.in_(set(plan_ids))))}


def get_plan(session: Session, name: str) -> PlanRecord:
    return record_of(load_plan(session, name))


def list_plans(session: Session, *, include_inactive: bool = True) -> list[PlanRecord]:
    """Plans by name."""
    query = select(Plan).order_by(Plan.name)
    if not include_inactive:
        query = query.where(Plan.active.is_(True))
    return [record_of(row) for row in session.scalars(query)]


def set_plan_active(session: Session, actor: str, name: str, active: bool) -> PlanRecord:
    """Offer a plan for new services again, or stop offering it (existing services keep it)."""
    row = load_plan(session, name)
    if row.active == active:
        return record_of(row)
    before = record_of(row)
    row.active = active
    session.flush()
    after = record_of(row)
    audit.record(
        session, actor, "plan.activate" if active else "plan.deactivate", "plan", before.to_json(), after.to_json()
    )
    return after


def _rate(text: str, what: str) -> int:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise Invalid(f"{what}: {exc}") from None


def _money(text: str, cur: Currency, what: str) -> Money:
    try:
        return Money.parse(text, cur)
    except ValueError as exc:
        raise Invalid(f"{what}: {exc}") from None


def read_plan(
    settings: Settings,
    *,
    name: str,
    download: str,
    upload: str,
    price: str,
    currency_code: str | None = None,
    cycle: str = "monthly",
    prepaid: bool = False,
    setup_fee: str | None = None,
    quota: str | None = None,
    over_quota: str = "throttle",
    fair_use_download: str | None = None,
    fair_use_upload: str | None = None,
    overage_price: str | None = None,
    tax_rate: str | None = None,
    tax_inclusive: bool | None = None,
    burst_download: str | None = None,
    burst_upload: str | None = None,
    burst_threshold_download: str | None = None,
    burst_threshold_upload: str | None = None,
    burst_time: str | None = None,
) -> PlanSpec:
    """Read a plan as people type it (``"10M"``, ``"30.00"``, ``"100GB"``, ``"0.16"``, ``"8s"``).

    The currency must be the billing currency (the default); tax rate and tax-inclusive default to
    ``[billing]``. A burst needs ``burst_download`` and ``burst_upload``; its thresholds default to the plan
    rates and its time to 8 seconds. Raises :class:`Invalid` naming the field at fault.
    """
    billing = settings.billing
    try:
        cur = currency(currency_code) if currency_code is not None else billing.currency
    except UnknownCurrency as exc:
        raise Invalid(str(exc)) from None
    if cur != billing.currency:
        raise Invalid(f"plan currency {cur.code} differs from the billing currency {billing.currency.code}")
    down, up = _rate(download, "download rate"), _rate(upload, "upload rate")
    burst = None
    burst_given = [burst_download, burst_upload, burst_threshold_download, burst_threshold_upload, burst_time]
    if any(value is not None for value in burst_given):
        if burst_download is None or burst_upload is None:
            raise Invalid("a burst needs both a burst download and a burst upload rate")
        seconds = 8
        if burst_time is not None:
            try:
                span = parse_duration(burst_time if not burst_time.strip().isdigit() else burst_time.strip() + "s")
            except ValueError as exc:
                raise Invalid(f"burst time: {exc}") from None
            seconds = int(span.total_seconds())
        try:
            burst = Burst(
                download=_rate(burst_download, "burst download rate"),
                upload=_rate(burst_upload, "burst upload rate"),
                threshold_download=_rate(burst_threshold_download, "burst download threshold")
                if burst_threshold_download is not None
                else down,
                threshold_upload=_rate(burst_threshold_upload, "burst upload threshold")
                if burst_threshold_upload is not None
                else up,
                time_s=seconds,
            )
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    try:
        rate = RateLimit(down, up, burst)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    fair_use = None
    if fair_use_download is not None or fair_use_upload is not None:
        if fair_use_download is None or fair_use_upload is None:
            raise Invalid("fair-use rates need both a download and an upload rate")
        fair_use = RateLimit(
            _rate(fair_use_download, "fair-use download rate"), _rate(fair_use_upload, "fair-use upload rate")
        )
    try:
        cycle_value = PlanCycle(cycle)
    except ValueError:
        raise Invalid(f"invalid billing cycle {cycle!r}: expected monthly or weekly") from None
    try:
        over = OverQuota(over_quota)
    except ValueError:
        raise Invalid(f"invalid over-quota action {over_quota!r}: expected throttle or charge") from None
    try:
        quota_bytes = parse_quota(quota) if quota is not None else None
    except PlanError as exc:
        raise Invalid(str(exc)) from None
    if quota_bytes is not None and over is OverQuota.THROTTLE and fair_use is None:
        raise Invalid("a plan with a quota that throttles needs fair-use download and upload rates")
    rate_value = billing.tax_rate
    if tax_rate is not None:
        if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", tax_rate.strip()):
            raise Invalid(f"invalid tax rate {check.shown(tax_rate)}: expected a decimal fraction like 0.16")
        rate_value = Decimal(tax_rate.strip())
    try:
        return PlanSpec(
            name=name,
            rate=rate,
            price=_money(price, cur, "price"),
            cycle="weekly" if cycle_value is PlanCycle.WEEKLY else "monthly",
            prepaid=prepaid,
            setup_fee=_money(setup_fee, cur, "setup fee") if setup_fee is not None else Money(0, cur),
            quota_bytes=quota_bytes,
            over_quota="charge" if over is OverQuota.CHARGE else "throttle",
            fair_use_rate=fair_use,
            overage_price_per_gb=_money(overage_price, cur, "overage price") if overage_price is not None else None,
            tax_rate=rate_value,
            tax_inclusive=billing.tax_inclusive if tax_inclusive is None else tax_inclusive,
        )
    except PlanError as exc:
        raise Invalid(str(exc)) from None


class PlanFields(TypedDict, total=False):
    """The keyword arguments of :func:`read_plan` and :func:`add_plan`."""

    name: Required[str]
    download: Required[str]
    upload: Required[str]
    price: Required[str]
    currency_code: str | None
    cycle: str
    prepaid: bool
    setup_fee: str | None
    quota: str | None
    over_quota: str
    fair_use_download: str | None
    fair_use_upload: str | None
    overage_price: str | None
    tax_rate: str | None
    tax_inclusive: bool | None
    burst_download: str | None
    burst_upload: str | None
    burst_threshold_download: str | None
    burst_threshold_upload: str | None
    burst_time: str | None


def add_plan(session: Session, actor: str, settings: Settings, **fields: Unpack[PlanFields]) -> PlanRecord:
    """Create a plan from typed-in values: ``add_plan(s, actor, settings, name="home-10", download="10M",
    upload="5M", price="30.00")``; the keyword arguments are those of :func:`read_plan`."""
    return create_plan(session, actor, read_plan(settings, **fields))
