"""Shared pieces of the billing package: dates, plans as policy values, line kinds, reasons."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from daemon.config import BillingSettings, DunningStepSettings
from daemon.db.models import InvoiceLineKind, utcnow
from policies.dunning import DunningStep
from policies.money import round_money
from policies.periods import local_date
from policies.proration import ChargeKind
from policies.rates import RateLimit

__all__ = [
    "DUNNING_PREFIX",
    "FAIR_USE_PREFIX",
    "LINE_KIND",
    "PREPAID_ENDED",
    "PREPAID_PREFIX",
    "ladder",
    "owned_reason",
    "today",
]

#: ``state_reason`` written when a prepaid service's paid period ends without renewal.
PREPAID_ENDED: Final = "prepaid period ended"
#: Reasons this package writes start with one of these; only such states are ever released by it.
PREPAID_PREFIX: Final = "prepaid"
DUNNING_PREFIX: Final = "dunning:"
FAIR_USE_PREFIX: Final = "fair use:"

#: How a policy charge kind is stored on an invoice line.
LINE_KIND: Final[dict[ChargeKind, InvoiceLineKind]] = {
    "recurring": InvoiceLineKind.RECURRING,
    "prorated": InvoiceLineKind.PRORATION,
    "credit": InvoiceLineKind.CREDIT,
    "setup_fee": InvoiceLineKind.SETUP,
    "overage": InvoiceLineKind.OVERAGE,
}


def today(billing: BillingSettings, as_of: date | None = None) -> date:
    """``as_of`` when given, else the current date in the billing time zone."""
    return as_of if as_of is not None else local_date(utcnow(), billing.timezone)


def owned_reason(reason: str | None) -> bool:
    """True when a service state was set by billing (prepaid, dunning or fair use), so billing may lift it."""
    return reason is not None and reason.startswith((PREPAID_PREFIX, DUNNING_PREFIX, FAIR_USE_PREFIX))


def ladder(steps: tuple[DunningStepSettings, ...], billing: BillingSettings) -> tuple[DunningStep, ...]:
    """The configured dunning steps as policy values (empty when none are configured)."""
    result: list[DunningStep] = []
    for step in steps:
        minimum = None if step.min_amount is None else round_money(step.min_amount, billing.currency)
        rate = None if step.throttle_rate is None else RateLimit(step.throttle_rate[0], step.throttle_rate[1])
        action = step.action
        if action not in ("remind", "throttle", "suspend", "terminate"):
            raise ValueError(f"dunning step {step.name!r} has unknown action {action!r}")
        result.append(
            DunningStep(
                name=step.name,
                days_past_due=step.days_past_due,
                min_amount=minimum,
                action=action,  # type: ignore[arg-type]  # checked just above
                throttle_rate=rate,
                email_template=step.email_template,
            )
        )
    return tuple(result)


def day_after(day: date) -> date:
    """The next calendar day."""
    return day + timedelta(days=1)
