"""Data quotas: what happens when a subscriber's usage in a billing period passes the plan's quota.

The rules, exactly:

* Usage is the bytes counted in both directions during the billing period; the quota is the plan's
  ``quota_bytes``. Usage up to and including the quota is within quota; a plan without a quota is always
  within quota.
* Past the quota, a ``"throttle"`` plan runs at its ``fair_use_rate`` for the rest of the period, and a
  ``"charge"`` plan keeps its rate and owes ``overage_price_per_gb`` for every started gigabyte over the
  quota, 1 GB being 10^9 bytes: ``over = used - quota``; ``gb = ceil(over / 10^9)``;
  ``charge = overage_price_per_gb * gb``. The charge is exact (an integer multiple of the price; no
  rounding). One byte over is one started GB; exactly 1 GB over is one GB. A charge beyond
  :data:`policies.money.MAX_AMOUNT` (a runaway counter) raises :class:`~policies.money.AmountOutOfRange` rather
  than bill it.
* The overage line is dated with the billing period it belongs to and carries the plan's tax treatment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from policies.money import Money, check_amount
from policies.periods import Period
from policies.plans import GB, PlanSpec, format_quota
from policies.proration import ChargeLine
from policies.rates import RateLimit

__all__ = ["QuotaDecision", "QuotaState", "evaluate_quota", "overage_line"]

QuotaState = Literal["within", "throttle", "charge"]


@dataclass(frozen=True)
class QuotaDecision:
    """The outcome for one period's usage.

    ``rate`` is the rate the subscriber should have now (the plan rate, or the fair-use rate when
    throttled); ``over_bytes`` is usage past the quota (0 when within); ``overage_gb`` the started GB charged
    and ``charge`` their price (``None`` unless ``state == "charge"``).
    """

    state: QuotaState
    used_bytes: int
    quota_bytes: int | None
    over_bytes: int
    rate: RateLimit
    overage_gb: int = 0
    charge: Money | None = None


def evaluate_quota(plan: PlanSpec, used_bytes: int) -> QuotaDecision:
    """Decide within quota, throttle to the fair-use rate, or overage charge (see the module rules)."""
    if type(used_bytes) is not int:
        raise TypeError(f"usage must be an int number of bytes, got {type(used_bytes).__name__}")
    if used_bytes < 0:
        raise ValueError(f"usage {used_bytes} bytes is negative")
    quota = plan.quota_bytes
    if quota is None or used_bytes <= quota:
        return QuotaDecision("within", used_bytes, quota, 0, plan.rate)
    over = used_bytes - quota
    if plan.over_quota == "throttle":
        fair = plan.fair_use_rate
        if fair is None:  # PlanSpec guarantees it; kept for type narrowing
            raise ValueError(f"plan {plan.name!r} throttles over quota but has no fair-use rate")
        return QuotaDecision("throttle", used_bytes, quota, over, fair)
    price = plan.overage_price_per_gb
    if price is None:  # PlanSpec guarantees it; kept for type narrowing
        raise ValueError(f"plan {plan.name!r} charges over quota but has no overage price")
    started_gb = -(-over // GB)
    charge = check_amount(price * started_gb, f"plan {plan.name!r} overage charge for {started_gb} GB")
    return QuotaDecision("charge", used_bytes, quota, over, plan.rate, started_gb, charge)


def overage_line(plan: PlanSpec, period: Period, used_bytes: int) -> ChargeLine | None:
    """The overage invoice line for ``period`` (``None`` unless the plan charges and usage passed the quota)."""
    decision = evaluate_quota(plan, used_bytes)
    if decision.charge is None or plan.quota_bytes is None:
        return None
    description = (
        f"{plan.name} data over {format_quota(plan.quota_bytes)} quota {period}: "
        f"{decision.overage_gb} GB started at {plan.overage_price_per_gb}"
    )
    return ChargeLine(description, decision.charge, period, "overage", plan.tax_rate, plan.tax_inclusive)
