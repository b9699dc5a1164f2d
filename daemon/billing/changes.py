"""Plan changes priced by the day (:func:`policies.proration.plan_change`).

A change takes effect on a day of the service's current billing period, not before what has been billed:

* When that day is already billed (prepaid plans, charged in advance), an invoice is issued at once with a
  credit for the old plan's unused days and the new plan's charge for the same days.
* Otherwise (postpaid plans, invoiced after the period), an invoice is issued at once for the old plan's
  days not yet billed before the change; the billing run then charges the new plan from the change day.

Both plans must be in the billing currency and on the same cycle (a change of cycle is a termination and a
new service). The plan itself is changed through :func:`daemon.services.services.set_service_plan`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from daemon.billing.common import today
from daemon.billing.coverage import load_coverage
from daemon.billing.documents import DraftLine, issue_invoice, settle
from daemon.billing.run import charge_for, setup_for
from daemon.config import Settings
from daemon.services import customers, invoices, plans
from daemon.services import services as subs
from daemon.services.errors import Conflict, Invalid
from daemon.services.plans import plan_spec, schedule_for
from policies.desired import ServiceState
from policies.proration import ProrationError, plan_change

__all__ = ["PlanChange", "change_plan"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanChange:
    """A plan change: the service, the plans, the day, and the invoice it produced (if any)."""

    service_id: int
    old_plan: str
    new_plan: str
    on: date
    invoice_id: int | None
    number: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            "old_plan": self.old_plan,
            "new_plan": self.new_plan,
            "on": self.on.isoformat(),
            "invoice_id": self.invoice_id,
            "number": self.number,
        }


def change_plan(
    session: Session, actor: str, settings: Settings, service_id: int, plan_name: str, *, on: date | None = None
) -> PlanChange:
    """Move a service to ``plan_name`` from ``on`` (default today), invoicing the difference (see module)."""
    billing = settings.billing
    day = today(billing, on)
    service = subs.load_service(session, service_id)
    customers.lock(session, service.customer_id)
    if service.state is ServiceState.TERMINATED:
        raise Conflict(f"service {service_id} is terminated")
    old_row, new_row = service.plan, plans.load_plan(session, plan_name)
    if new_row.id == old_row.id:
        raise Invalid(f"service {service_id} is already on plan {plan_name!r}")
    old, new = plan_spec(old_row), plan_spec(new_row)
    if new.currency != billing.currency:
        raise Invalid(
            f"plan {plan_name!r} is priced in {new.currency.code}, this installation bills in {billing.currency}"
        )
    if old.cycle != new.cycle:
        raise Invalid(f"cannot change a {old.cycle} plan to a {new.cycle} plan: terminate and add a new service")
    if day < service.started_on:
        raise Invalid(f"the change day {day} is before the service started on {service.started_on}")
    schedule = schedule_for(billing, service, old)
    period = schedule.containing(day)
    cover = load_coverage(session, [service.id])[service.id]
    billed_until = cover.until or service.started_on
    try:
        if billed_until > day:
            if billed_until > period.end:
                raise Invalid(f"service {service_id} is billed beyond the period {period}; change it in that period")
            lines = plan_change(old, new, period, day)
        elif billed_until < period.start:
            raise Invalid(f"service {service_id} has periods before {period} not billed yet; run billing first")
        elif billed_until < day:
            lines = [charge_for(old, period, billed_until, day)]
            if cover.until is None and not old.setup_fee.is_zero():
                lines.append(setup_for(old, service.started_on))
        else:
            lines = []
    except ProrationError as exc:
        raise Invalid(str(exc)) from None
    invoice_id = number = None
    if lines:
        row = issue_invoice(session, billing, service.customer_id, [DraftLine(service.id, x) for x in lines], day)
        invoice_id, number = row.id, invoices.format_number(row.series, row.number)
    subs.set_service_plan(session, actor, service_id, plan_name)
    settle(session, service.customer_id, billing.currency)
    log.info("service %s changed from %s to %s on %s by %s", service_id, old.name, new.name, day, actor)
    return PlanChange(service_id, old.name, new.name, day, invoice_id, number)
