"""The billing run: every service's charges that are due on a day, invoiced once.

The rules, exactly:

* Each service is billed on its plan's cycle (monthly or weekly), with periods anchored as ``[billing]
  anchor`` says (calendar months and weeks starting Monday, or anniversaries of the service's start date).
* Prepaid plans are charged in advance: a period is billed on its first day. A period is renewed only when
  the customer's credit (money received beyond every invoice, less what this run's other charges need)
  covers it; otherwise the period is not billed and the service is suspended with the reason
  ``"prepaid period ended"``. A lapsed prepaid service is renewed from the day its credit covers it again
  (a payment, or a later run), prorated to the end of that period.
* Postpaid plans are invoiced after each period ends, or after the service's last day when it ends earlier.
* The first charge of a service starts on its ``started_on`` day (prorated by the day when that is inside a
  period, see :mod:`policies.proration`) and carries the plan's setup fee. A terminated service is billed up
  to its last day; a prepaid one billed beyond it gets a credit for the unused days, once.
* Plans with a charged quota get an overage line for each period whose usage (the sum of the usage samples'
  deltas, both directions, taken inside the period in the billing time zone) passed the quota: with the
  period's charge for postpaid plans, on the next period's invoice for prepaid ones.
* All of a customer's due charges go on one invoice, issued on the run's day. What a service has been billed
  for is read back from its invoice lines that are not void, so a run repeated for the same day, or one
  that resumes after being killed half-way, creates nothing twice. Customers are billed in batches, each in
  one transaction (a killed run loses at most the batch in progress, which the next run redoes); each
  customer's documents are all-or-nothing, and a customer whose charges cannot be computed is reported and
  skipped without stopping the run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.billing.common import PREPAID_PREFIX, today
from daemon.billing.coverage import Coverage, load_coverage
from daemon.billing.documents import DraftLine, issue_invoice, issue_invoices, settle
from daemon.billing.dunning import refresh_states
from daemon.config import BillingSettings, Settings
from daemon.db import session_factory
from daemon.db.models import Service
from daemon.services import customers, invoices, ledger, plans
from daemon.services import services as subs
from daemon.services.errors import ServiceError
from daemon.services.plans import plan_spec, schedule_for
from daemon.services.usage import period_usage
from policies.desired import ServiceState
from policies.money import Money
from policies.periods import Period, PeriodError, Schedule
from policies.plans import PlanSpec
from policies.proration import ChargeLine, ProrationError, recurring, share, termination
from policies.quota import overage_line
from policies.tax import tax_line

__all__ = ["BillingRunResult", "CustomerBill", "bill_customer", "charge_for", "run_billing", "setup_for"]

log = logging.getLogger(__name__)

#: The most periods one service is billed for in one run (a catch-up guard against a start date typo).
MAX_PERIODS_PER_RUN = 1000


@dataclass(frozen=True)
class CustomerBill:
    """What one customer got from a run: the invoice (if any) and the services whose prepaid period lapsed."""

    customer_id: int
    invoice_id: int | None
    number: str | None
    total: Money | None
    lines: int
    lapsed_services: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "invoice_id": self.invoice_id,
            "number": self.number,
            "total": None if self.total is None else self.total.to_json(),
            "lines": self.lines,
            "lapsed_services": list(self.lapsed_services),
        }


@dataclass(frozen=True)
class BillingRunResult:
    """A run's outcome: the day, the invoices issued, and the customers skipped with why."""

    as_of: date
    customers: int
    invoices: tuple[CustomerBill, ...]
    lapsed_services: tuple[int, ...]
    errors: tuple[tuple[int, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "invoices_issued": len(self.invoices),
            "invoices": [bill.to_json() for bill in self.invoices],
            "lapsed_services": list(self.lapsed_services),
            "errors": [{"customer_id": cid, "error": text} for cid, text in self.errors],
        }


def _last_day(service: Service, billing: BillingSettings) -> date | None:
    """The day after the service's last day of service, for a terminated one."""
    if service.terminated_at is None:
        return None
    return service.terminated_at.astimezone(billing.timezone).date()


def charge_for(plan: PlanSpec, period: Period, start: date, stop: date) -> ChargeLine:
    """The plan's charge for the days ``[start, stop)`` of ``period``: the recurring line for the whole
    period, else the price's share by the day (kind ``prorated``)."""
    if start == period.start and stop == period.end:
        return recurring(plan, period)
    used, days = (stop - start).days, period.days
    note = f"{start.isoformat()} to {(stop - timedelta(days=1)).isoformat()} ({used}/{days} days)"
    return ChargeLine(
        f"{plan.name} {note}",
        share(plan.price, period, start, stop),
        Period(start, stop),
        "prorated",
        plan.tax_rate,
        plan.tax_inclusive,
    )


def setup_for(plan: PlanSpec, day: date) -> ChargeLine:
    """The plan's setup fee, dated ``day``."""
    return ChargeLine(
        f"{plan.name} setup fee",
        plan.setup_fee,
        Period(day, day + timedelta(days=1)),
        "setup_fee",
        plan.tax_rate,
        plan.tax_inclusive,
    )


def _overage(
    session: Session,
    billing: BillingSettings,
    service: Service,
    plan: PlanSpec,
    schedule: Schedule,
    cover: Coverage,
    period: Period,
    *,
    first: bool,
) -> ChargeLine | None:
    """The overage line billed with ``period``: for that period (postpaid) or the one before it (prepaid)."""
    if plan.quota_bytes is None or plan.over_quota != "charge":
        return None
    if plan.prepaid:
        if first:
            return None
        period = schedule.previous(period)
    if period.start in cover.overage_starts or period.end <= service.started_on:
        return None
    served = Period(max(period.start, service.started_on), period.end)
    line = overage_line(plan, period, period_usage(session, billing, service.id, served))
    if line is not None:
        cover.overage_starts.add(period.start)
    return line


@dataclass
class _ServicePlan:
    """The charges one service owes on a day, split into the prepaid periods (each renewed only if credit
    covers it) and everything else."""

    postpaid: list[ChargeLine] = field(default_factory=list)
    prepaid: list[list[ChargeLine]] = field(default_factory=list)


def _service_charges(
    session: Session,
    billing: BillingSettings,
    service: Service,
    plan: PlanSpec,
    cover: Coverage,
    as_of: date,
    *,
    prepaid_only: bool,
) -> _ServicePlan:
    schedule: Schedule = schedule_for(billing, service, plan)
    result = _ServicePlan()
    if plan.prepaid is False and prepaid_only:
        return result
    end = _last_day(service, billing)
    first = cover.until is None
    start = cover.until or service.started_on
    lapsed = (
        plan.prepaid
        and service.state is ServiceState.SUSPENDED
        and (service.state_reason or "").startswith(PREPAID_PREFIX)
    )
    if lapsed and start < as_of:
        start = as_of  # a lapsed prepaid service is renewed from the day it is paid for again
    for _ in range(MAX_PERIODS_PER_RUN):
        if end is not None and start >= end:
            break
        period = schedule.containing(start)
        stop = period.end if end is None else min(period.end, end)
        if plan.prepaid:
            if start > as_of:
                break
        elif stop > as_of:
            break
        charges = [charge_for(plan, period, start, stop)]
        if first and not plan.setup_fee.is_zero():
            charges.append(setup_for(plan, service.started_on))
        overage = _overage(session, billing, service, plan, schedule, cover, period, first=first)
        if overage is not None:
            charges.append(overage)
        if plan.prepaid:
            result.prepaid.append(charges)
        else:
            result.postpaid.extend(charges)
        first = False
        start = stop
    prepaid_beyond_end = plan.prepaid and end is not None and cover.until is not None and cover.until > end
    if prepaid_beyond_end and end is not None and end not in cover.credit_starts:
        period = schedule.containing(end)
        if cover.until is not None and cover.until <= period.end:
            result.postpaid.extend(termination(plan, period, end))
    return result


def _gross(lines: Sequence[ChargeLine], zero: Money) -> Money:
    total = zero
    for line in lines:
        total = total + tax_line(line).gross
    return total


def _plan_customer(
    session: Session,
    billing: BillingSettings,
    services: Sequence[Service],
    coverage: dict[int, Coverage],
    as_of: date,
    *,
    prepaid_only: bool,
) -> tuple[list[DraftLine], list[tuple[int, list[ChargeLine]]]]:
    """The customer's due charges: lines to invoice now, and prepaid periods (per service) that need credit."""
    cur = billing.currency
    postpaid: list[DraftLine] = []
    prepaid: list[tuple[int, list[ChargeLine]]] = []
    for service in services:
        if service.started_on > as_of:
            continue
        plan = plan_spec(service.plan)
        if plan.currency != cur:
            raise ServiceError(
                f"service {service.id} is on plan {plan.name!r} priced in {plan.currency.code}, "
                f"this installation bills in {cur.code}"
            )
        charges = _service_charges(
            session, billing, service, plan, coverage[service.id], as_of, prepaid_only=prepaid_only
        )
        postpaid.extend(DraftLine(service.id, line) for line in charges.postpaid)
        prepaid.extend((service.id, lines) for lines in charges.prepaid)
    return postpaid, prepaid


def bill_customer(
    session: Session,
    settings: Settings,
    customer_id: int,
    as_of: date,
    *,
    services: Sequence[Service] | None = None,
    coverage: dict[int, Coverage] | None = None,
    prepaid_only: bool = False,
) -> CustomerBill:
    """Invoice what the customer owes on ``as_of`` (see the module rules) in the caller's transaction.

    ``services`` and ``coverage`` may be passed by a caller that loaded them for many customers at once.
    With ``prepaid_only`` only prepaid renewals are billed (what a payment can trigger).
    """
    billing = settings.billing
    cur = billing.currency
    customers.lock(session, customer_id)
    if services is None:
        services = subs.started_by(session, [customer_id], as_of)
    if coverage is None:
        coverage = load_coverage(session, [s.id for s in services])
    postpaid, prepaid = _plan_customer(session, billing, services, coverage, as_of, prepaid_only=prepaid_only)
    lapsed: list[int] = []
    renewed: list[DraftLine] = []
    if prepaid:
        zero = Money.zero(cur)
        credit = settle(session, customer_id, cur).credit - _gross([d.charge for d in postpaid], zero)
        for service_id, lines in prepaid:
            if service_id in lapsed:
                continue
            needed = _gross(lines, zero)
            if needed > credit:
                lapsed.append(service_id)
                continue
            credit = credit - needed
            renewed.extend(DraftLine(service_id, line) for line in lines)
    drafts = postpaid + renewed
    if not drafts:
        return CustomerBill(customer_id, None, None, None, 0, tuple(lapsed))
    row = issue_invoice(session, billing, customer_id, drafts, as_of)
    settle(session, customer_id, cur)
    return CustomerBill(
        customer_id,
        row.id,
        invoices.format_number(row.series, row.number),
        Money(row.total_minor, cur),
        len(drafts),
        tuple(lapsed),
    )


def _issue_bulk(
    session: Session, settings: Settings, bulk: Sequence[tuple[int, list[DraftLine]]], day: date
) -> list[CustomerBill]:
    """Invoice postpaid customers all at once, then allocate for those who had money on account."""
    if not bulk:
        return []
    cur = settings.billing.currency
    ids = [customer_id for customer_id, _ in bulk]
    had_credit = ledger.in_credit(session, ids, cur)
    issued = issue_invoices(session, settings.billing, bulk, day)
    for customer_id in had_credit:
        settle(session, customer_id, cur)
    return [CustomerBill(i.customer_id, i.invoice_id, i.number, i.total, i.lines, ()) for i in issued]


def _customer_batches(session: Session, as_of: date, batch_size: int) -> list[list[int]]:
    """The customers with services started by ``as_of``, in id order, cut into batches."""
    ids = subs.customers_started_by(session, as_of)
    return [ids[start : start + batch_size] for start in range(0, len(ids), max(1, batch_size))]


def run_billing(
    engine: Engine,
    settings: Settings,
    *,
    as_of: date | None = None,
    actor: str = "billing",
    batch_size: int = 1000,
    apply_states: bool = True,
) -> BillingRunResult:
    """Bill every customer for what is due on ``as_of`` (default: today in the billing time zone).

    Each batch of ``batch_size`` customers is one transaction; see the module rules. With ``apply_states``
    each billed customer's services are brought to the state billing and dunning call for (a lapsed prepaid
    service is suspended, a renewed one released).
    """
    day = today(settings.billing, as_of)
    factory = session_factory(engine)
    bills: list[CustomerBill] = []
    lapsed: list[int] = []
    errors: list[tuple[int, str]] = []
    seen = 0
    with factory() as reader:
        batches = _customer_batches(reader, day, batch_size)
    for batch in batches:
        with factory.begin() as session:
            customers.lock_many(session, batch)  # before reading what was billed, so a concurrent run waits here
            rows = subs.started_by(session, batch, day)
            # Held for the batch, so each service's plan resolves from the identity map without a query.
            plans_by_id = plans.plans_by_id(session, {row.plan_id for row in rows})
            coverage = load_coverage(session, [row.id for row in rows])
            by_customer: dict[int, list[Service]] = defaultdict(list)
            for row in rows:
                by_customer[row.customer_id].append(row)
            log.debug("billing batch of %s customers, %s plans", len(batch), len(plans_by_id))
            bulk: list[tuple[int, list[DraftLine]]] = []
            for customer_id in batch:
                seen += 1
                services = by_customer[customer_id]
                try:
                    if any(row.plan.prepaid for row in services):
                        with session.begin_nested():
                            bill = bill_customer(
                                session, settings, customer_id, day, services=services, coverage=coverage
                            )
                            if apply_states:
                                refresh_states(session, settings, customer_id, day, actor=actor, send_mail=False)
                        if bill.invoice_id is not None:
                            bills.append(bill)
                        lapsed.extend(bill.lapsed_services)
                    else:
                        drafts, _ = _plan_customer(
                            session, settings.billing, services, coverage, day, prepaid_only=False
                        )
                        if drafts:
                            bulk.append((customer_id, drafts))
                except (ServiceError, PeriodError, ProrationError, ValueError) as exc:
                    log.error("billing run %s: customer %s skipped: %s", day, customer_id, exc)
                    errors.append((customer_id, str(exc)))
            bills.extend(_issue_bulk(session, settings, bulk, day))
    log.info("billing run %s: %s customers, %s invoices, %s errors", day, seen, len(bills), len(errors))
    return BillingRunResult(day, seen, tuple(bills), tuple(lapsed), tuple(errors))
