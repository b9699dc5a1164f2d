"""Why is this customer slow or cut off? The facts support staff need, gathered in one read.

:func:`diagnose_service` looks at the service's state and its reason, the plan's rates, the router's health and
last sync, router operations still waiting to be carried out, the customer's unpaid balance and overdue invoices,
a promise to pay, and a conflict that keeps the service off its router, and turns them into :class:`Finding`
lines ordered by how much they explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config import BillingSettings
from daemon.db.models import (
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    RouterOp,
    RouterOpStatus,
    RouterStatus,
    Service,
    UsageSample,
)
from daemon.services import invoices, ledger, ops
from daemon.services.plans import plan_spec, schedule_for
from daemon.services.usage import period_usage
from policies.desired import ServiceState
from policies.money import Money
from policies.plans import format_quota
from policies.rates import format_rate

Severity = Literal["ok", "info", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    title: str
    detail: str = ""


@dataclass(frozen=True)
class Diagnosis:
    service_id: int
    state: str
    headline: str
    findings: tuple[Finding, ...]
    balance: Money
    pending_ops: int
    last_sample_at: datetime | None
    #: Why the router does not carry the service (a conflict found by the last reconcile), or None.
    conflict: str | None = None


def human_bytes(count: int) -> str:
    """A traffic volume for people, in SI units with one decimal: ``1.5 GB``, ``312 B``."""
    if count < 1000:
        return f"{count} B"
    size = Decimal(count)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        size /= 1000
        if size < 1000 or unit == "PB":
            break
    return f"{size.quantize(Decimal('0.1'))} {unit}"


def _usage_finding(session: Session, billing: BillingSettings, svc: Service, today: date) -> Finding:
    """Traffic in the current billing period, against the plan's quota when it has one."""
    plan = plan_spec(svc.plan)
    period = schedule_for(billing, svc, plan).containing(today)
    used = period_usage(session, billing, svc.id, period)
    span = f"{period.start.isoformat()} to {period.last_day.isoformat()}"
    if plan.quota_bytes is None:
        return Finding("info", f"{human_bytes(used)} used this period", f"Period {span}; no quota.")
    share = f"{human_bytes(used)} of {format_quota(plan.quota_bytes)} quota used"
    if used >= plan.quota_bytes:
        rule = "slowed to the fair-use rate" if plan.over_quota == "throttle" else "charged per extra GB"
        return Finding("warning", f"Quota used up: {share}", f"Period {span}; past the quota traffic is {rule}.")
    return Finding("info", share, f"Period {span}.")


def _when(moment: datetime | date | None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat()


def diagnose_service(session: Session, service_id: int, billing: BillingSettings, *, today: date) -> Diagnosis:
    """Every fact that explains how service ``service_id`` behaves right now, most telling first."""
    svc = session.get(Service, service_id)
    if svc is None:
        raise LookupError(f"no service {service_id}")
    plan, router = svc.plan, svc.router
    findings: list[Finding] = []
    rates = f"{format_rate(plan.download_bps)} down / {format_rate(plan.upload_bps)} up"
    since = _when(svc.state_since)
    reason = svc.state_reason or "no reason recorded"

    if svc.state is ServiceState.ACTIVE:
        headline = f"Active on plan {plan.name} ({rates})"
    elif svc.state is ServiceState.THROTTLED:
        headline = f"Throttled since {since}: {reason}"
        findings.append(Finding("problem", "Speed is reduced", f"{reason}. Plan rate would be {rates}."))
    elif svc.state is ServiceState.SUSPENDED:
        headline = f"Suspended since {since}: {reason}"
        findings.append(Finding("problem", "Service is suspended", f"{reason}. Internet access is blocked."))
    else:
        headline = f"Terminated since {since}: {reason}"
        findings.append(Finding("problem", "Service is terminated", reason))

    conflict = ops.conflicts_of_service(session, svc.id) if svc.state is not ServiceState.TERMINATED else None
    if conflict is not None:
        headline = f"Not on the router: {conflict}"
        findings.append(
            Finding(
                "problem",
                f"Not on router {router.name}",
                f"{conflict}. The router does not carry this service; it is retried until the cause is fixed.",
            )
        )

    if router.status is RouterStatus.DOWN:
        findings.append(
            Finding(
                "problem",
                f"Router {router.name} is unreachable",
                f"Last seen {_when(router.last_seen_at)}; last error: {router.last_error or 'none recorded'}.",
            )
        )
    elif router.status is RouterStatus.UNKNOWN:
        findings.append(Finding("warning", f"Router {router.name} has not been contacted yet"))
    else:
        findings.append(
            Finding("ok", f"Router {router.name} is up", f"Last synchronised {_when(router.last_sync_at)}.")
        )

    pending = session.scalar(
        select(func.count())
        .select_from(RouterOp)
        .where(RouterOp.router_id == router.id, RouterOp.status == RouterOpStatus.PENDING)
        .where((RouterOp.service_id == svc.id) | (RouterOp.service_id.is_(None)))
    )
    pending_ops = int(pending or 0)
    if pending_ops:
        findings.append(
            Finding(
                "warning",
                f"{pending_ops} change(s) waiting to reach the router",
                "The router does not have the latest plan or state yet; they are applied on the next reconcile.",
            )
        )

    balance = ledger.balance(session, svc.customer_id, plan.currency)
    if balance.is_positive():
        overdue = session.scalars(
            select(Invoice)
            .where(
                Invoice.customer_id == svc.customer_id,
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.kind == InvoiceKind.INVOICE,
                Invoice.due_on < today,
            )
            .order_by(Invoice.due_on)
        ).all()
        if overdue:
            oldest = overdue[0]
            number = invoices.format_number(oldest.series, oldest.number)
            days = (today - oldest.due_on).days
            findings.append(
                Finding(
                    "warning",
                    f"{balance.to_json()} {balance.currency.code} unpaid",
                    f"{len(overdue)} overdue invoice(s); the oldest, {number}, "
                    f"was due {oldest.due_on.isoformat()} ({days} days ago).",
                )
            )
        else:
            findings.append(Finding("info", f"{balance.to_json()} {balance.currency.code} owed, nothing overdue"))
    elif balance.is_negative():
        findings.append(Finding("info", f"{(-balance).to_json()} {balance.currency.code} in credit"))

    if svc.promise_until is not None and svc.promise_until >= today:
        findings.append(
            Finding("info", f"Promise to pay until {svc.promise_until.isoformat()}", "Enforcement is on hold.")
        )
    if "never-suspend" in svc.customer.tags:
        findings.append(Finding("info", "Tagged never-suspend", "Dunning sends reminders only."))

    if svc.state is not ServiceState.TERMINATED and today >= svc.started_on:
        findings.append(_usage_finding(session, billing, svc, today))

    last = session.scalars(
        select(UsageSample).where(UsageSample.service_id == svc.id).order_by(UsageSample.taken_at.desc()).limit(1)
    ).first()
    if last is None:
        findings.append(Finding("info", "No traffic counted yet"))

    order = {"problem": 0, "warning": 1, "info": 2, "ok": 3}
    findings.sort(key=lambda f: order[f.severity])
    return Diagnosis(
        service_id=svc.id,
        state=svc.state.value,
        headline=headline,
        findings=tuple(findings),
        balance=balance,
        pending_ops=pending_ops,
        last_sample_at=last.taken_at if last else None,
        conflict=conflict,
    )
