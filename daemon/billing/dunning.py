"""Dunning applied: each customer's services brought to the state their account calls for.

The rules, exactly:

* The ladder is ``[dunning] steps``; the decision is :func:`policies.dunning.evaluate` on the customer's
  standing after allocation (:func:`daemon.billing.documents.settle`): the due date of the oldest invoice
  still unpaid and due, and what is unpaid on invoices due by the day. The ``never-suspend`` tag holds
  enforcement for the whole account; a promise to pay (``promise_until``) holds it for its service.
* Besides dunning, a prepaid service whose paid periods do not cover the day is suspended (``"prepaid
  period ended"``), and a service over its plan's quota on a throttling plan is throttled to fair use. The
  most severe of these wins (terminated, suspended, throttled, active).
* A service is changed only when its state, or the cause of it (dunning, prepaid, fair use), differs from
  what is called for, through :func:`daemon.services.state.set_state`. Terminated services are never touched,
  and a service throttled or suspended for another reason (by staff, by hand) is never released here.
* When the decision's step names an e-mail template and the customer has an address, the message is sent
  once per step and per oldest unpaid invoice; each sending is recorded in the audit log
  (``dunning.email``), which is what keeps it from being sent twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from daemon.billing.common import (
    DUNNING_PREFIX,
    FAIR_USE_PREFIX,
    PREPAID_ENDED,
    PREPAID_PREFIX,
    ladder,
    owned_reason,
)
from daemon.billing.coverage import load_coverage
from daemon.billing.documents import Standing, settle
from daemon.billing.mail import Mailer, MailError, SmtpMailer, Templates
from daemon.config import Settings
from daemon.db.models import Customer, Service
from daemon.services import audit, customers
from daemon.services import services as subs
from daemon.services.plans import plan_spec, schedule_for
from daemon.services.state import set_state
from daemon.services.usage import period_usage
from policies.desired import ServiceState
from policies.dunning import AccountStanding, DunningDecision, evaluate
from policies.periods import Period
from policies.plans import format_quota

__all__ = ["NEVER_SUSPEND", "CustomerDunning", "ServiceChange", "refresh_states"]

log = logging.getLogger(__name__)

#: The customer tag that holds all enforcement.
NEVER_SUSPEND: Final = "never-suspend"

_SEVERITY: Final = {"active": 0, "throttled": 1, "suspended": 2, "terminated": 3}


@dataclass(frozen=True)
class ServiceChange:
    """A service moved from one state to another, and why."""

    service_id: int
    before: str
    after: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "before": self.before, "after": self.after, "reason": self.reason}


@dataclass(frozen=True)
class CustomerDunning:
    """One customer's evaluation: the account-wide decision, what changed, and the e-mail sent (if any)."""

    customer_id: int
    decision: DunningDecision
    unpaid: str
    changes: tuple[ServiceChange, ...]
    emailed: str | None = None
    email_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "step": self.decision.step,
            "action": self.decision.action,
            "state": self.decision.service_state,
            "reason": self.decision.reason,
            "unpaid": self.unpaid,
            "changes": [change.to_json() for change in self.changes],
            "emailed": self.emailed,
            "email_error": self.email_error,
        }


def _cause(reason: str | None) -> str:
    for prefix in (DUNNING_PREFIX, PREPAID_PREFIX, FAIR_USE_PREFIX):
        if reason is not None and reason.startswith(prefix):
            return prefix
    return ""


def _account(standing: Standing, day: date, *, never_suspend: bool, promise: date | None) -> AccountStanding:
    oldest = standing.oldest_unpaid(day)
    return AccountStanding(
        oldest_unpaid_due=None if oldest is None else oldest.due_on,
        unpaid=standing.overdue(day),
        never_suspend=never_suspend,
        promise_until=promise,
    )


def _fair_use(session: Session, settings: Settings, service: Service, day: date) -> tuple[str, str] | None:
    plan = plan_spec(service.plan)
    if plan.quota_bytes is None or plan.over_quota != "throttle":
        return None
    period = schedule_for(settings.billing, service, plan).containing(day)
    so_far = Period(period.start, min(period.end, day + timedelta(days=1)))  # samples up to the end of ``day``
    used = period_usage(session, settings.billing, service.id, so_far)
    if used <= plan.quota_bytes:
        return None
    reason = f"{FAIR_USE_PREFIX} {format_quota(used)} used of the {format_quota(plan.quota_bytes)} quota in {period}"
    return (ServiceState.THROTTLED, reason)


def _wanted(
    session: Session,
    settings: Settings,
    service: Service,
    day: date,
    decision: DunningDecision | None,
    covered_until: date | None,
) -> tuple[str, str]:
    candidates: list[tuple[str, str]] = []
    if decision is not None and decision.service_state != "active":
        candidates.append((decision.service_state, f"{DUNNING_PREFIX} {decision.reason}"))
    if service.plan.prepaid and (covered_until is None or covered_until <= day):
        candidates.append((ServiceState.SUSPENDED, PREPAID_ENDED))
    fair = _fair_use(session, settings, service, day)
    if fair is not None:
        candidates.append(fair)
    if not candidates:
        return (ServiceState.ACTIVE, "billing: account in good standing")
    return max(candidates, key=lambda item: _SEVERITY[item[0]])


def _already_emailed(session: Session, customer_id: int, step: str, invoice_id: int) -> bool:
    rows = audit.views_after(session, "dunning.email", "customer", customer_id)
    return any(row is not None and row.get("step") == step and row.get("invoice_id") == invoice_id for row in rows)


def _email(
    session: Session,
    settings: Settings,
    customer: Customer,
    standing: Standing,
    decision: DunningDecision,
    day: date,
    *,
    actor: str,
    mailer: Mailer,
    templates: Templates,
) -> tuple[str | None, str | None]:
    if decision.step is None:
        return None, None
    step = next((s for s in settings.dunning if s.name == decision.step), None)
    oldest = standing.oldest_unpaid(day)
    if step is None or step.email_template is None or oldest is None:
        return None, None
    if not customer.email:
        log.warning("dunning step %s for customer %s: no e-mail address", step.name, customer.id)
        return None, "customer has no e-mail address"
    if _already_emailed(session, customer.id, step.name, oldest.invoice_id):
        return None, None
    context = {
        "customer_name": customer.name,
        "customer_ref": f"C{customer.id}",
        "amount": str(standing.overdue(day)),
        "invoice_number": oldest.number,
        "due_on": oldest.due_on.isoformat(),
        "days_overdue": (day - oldest.due_on).days,
        "payment_url": settings.enforcement.payment_page_url,
        "step": step.name,
    }
    try:
        message = templates.message(step.email_template, context, sender=settings.smtp.sender, to=customer.email)
        mailer.send(message)
    except MailError as exc:
        log.error("dunning step %s for customer %s: %s", step.name, customer.id, exc)
        return None, str(exc)
    audit.record(
        session,
        actor,
        "dunning.email",
        "customer",
        None,
        {"step": step.name, "invoice_id": oldest.invoice_id, "template": step.email_template, "to": customer.email},
        entity_id=customer.id,
    )
    return step.name, None


def refresh_states(
    session: Session,
    settings: Settings,
    customer_id: int,
    day: date,
    *,
    actor: str = "dunning",
    send_mail: bool = True,
    mailer: Mailer | None = None,
    templates: Templates | None = None,
) -> CustomerDunning:
    """Allocate the customer's money, evaluate dunning on ``day`` and apply the result to every service (see
    the module rules), in the caller's transaction. Sends the step's e-mail when ``send_mail``."""
    customer = customers.lock(session, customer_id)
    cur = settings.billing.currency
    standing = settle(session, customer_id, cur)
    steps = ladder(settings.dunning, settings.billing)
    never = NEVER_SUSPEND in customer.tags
    services = subs.live_services(session, customer_id)
    promises = [s.promise_until for s in services if s.promise_until is not None]
    account = _account(standing, day, never_suspend=never, promise=max(promises) if promises else None)
    if steps:
        overall = evaluate(steps, account, day)
    else:
        overall = DunningDecision(None, "none", ServiceState.ACTIVE, "no dunning steps configured")
    coverage = load_coverage(session, [s.id for s in services if s.plan.prepaid])
    changes: list[ServiceChange] = []
    for service in services:
        if service.started_on > day:
            continue
        decision = None
        if steps:
            own = _account(standing, day, never_suspend=never, promise=service.promise_until)
            decision = evaluate(steps, own, day)
        cover = coverage.get(service.id)
        state, reason = _wanted(session, settings, service, day, decision, None if cover is None else cover.until)
        current = service.state.value
        if current == state and _cause(service.state_reason) == _cause(reason):
            continue
        if current != "active" and not owned_reason(service.state_reason):
            continue  # set by staff or another part of the system: not ours to lift or change
        set_state(session, actor, service.id, state, reason)
        changes.append(ServiceChange(service.id, current, state, reason))
    emailed = email_error = None
    if send_mail:
        emailed, email_error = _email(
            session,
            settings,
            customer,
            standing,
            overall,
            day,
            actor=actor,
            mailer=mailer or SmtpMailer(settings.smtp),
            templates=templates or Templates(),
        )
    return CustomerDunning(customer_id, overall, account.unpaid.to_json(), tuple(changes), emailed, email_error)
