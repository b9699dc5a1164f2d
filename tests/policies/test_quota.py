"""Quotas: within, throttle to fair use, or charge per started GB (10^9 bytes)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from policies.money import MAX_AMOUNT, AmountOutOfRange, Money, currency
from policies.periods import Period
from policies.plans import GB, PlanError, PlanSpec
from policies.quota import evaluate_quota, overage_line
from policies.rates import RateLimit

USD = currency("USD")
RATE = RateLimit(10_000_000, 2_000_000)
FAIR = RateLimit(1_000_000, 512_000)
QUOTA = 100 * 10**9  # 100 GB
JANUARY = Period(date(2025, 1, 1), date(2025, 2, 1))


def plan(**over: Any) -> PlanSpec:
    values: dict[str, Any] = {
        "name": "Capped-100GB",
        "rate": RATE,
        "price": Money(3000, USD),
        "cycle": "monthly",
        "prepaid": True,
        "setup_fee": Money(0, USD),
        "quota_bytes": QUOTA,
        "over_quota": "throttle",
        "fair_use_rate": FAIR,
    }
    values.update(over)
    return PlanSpec(**values)


CHARGING = {"over_quota": "charge", "fair_use_rate": None, "overage_price_per_gb": Money(250, USD)}


@pytest.mark.parametrize(
    ("used", "state", "rate", "over"),
    [
        (0, "within", RATE, 0),
        (QUOTA, "within", RATE, 0),  # exactly the quota is still within
        (QUOTA + 1, "throttle", FAIR, 1),
        (3 * QUOTA, "throttle", FAIR, 2 * QUOTA),
    ],
)
def test_throttling_plan(used: int, state: str, rate: RateLimit, over: int) -> None:
    decision = evaluate_quota(plan(), used)
    assert (decision.state, decision.rate, decision.over_bytes, decision.charge) == (state, rate, over, None)


@pytest.mark.parametrize(
    ("used", "gb", "charge"),
    [
        (QUOTA, 0, None),
        (QUOTA + 1, 1, 250),  # 1 byte over starts the first GB: 1 * 2.50
        (QUOTA + 10**9, 1, 250),  # exactly 1 GB over: 1 * 2.50
        (QUOTA + 10**9 + 1, 2, 500),  # 1 GB and a byte: 2 started GB * 2.50 = 5.00
        (QUOTA + 12_300_000_000, 13, 3250),  # 12.3 GB over -> 13 started GB * 2.50 = 32.50
    ],
)
def test_charging_plan(used: int, gb: int, charge: int | None) -> None:
    decision = evaluate_quota(plan(**CHARGING), used)
    assert decision.rate == RATE  # a charging plan keeps its speed
    assert decision.overage_gb == gb
    assert decision.charge == (None if charge is None else Money(charge, USD))
    assert decision.state == ("within" if charge is None else "charge")


def test_unlimited_plan_is_always_within() -> None:
    unlimited = plan(quota_bytes=None, fair_use_rate=None)
    decision = evaluate_quota(unlimited, 10**18)
    assert (decision.state, decision.quota_bytes, decision.rate) == ("within", None, RATE)


def test_overage_line() -> None:
    taxed = plan(**CHARGING, tax_rate=Decimal("0.16"))
    line = overage_line(taxed, JANUARY, QUOTA + 2_500_000_000)  # 2.5 GB over -> 3 started GB * 2.50 = 7.50
    assert line is not None
    assert (line.kind, line.amount, line.period, line.tax_rate) == (
        "overage",
        Money(750, USD),
        JANUARY,
        Decimal("0.16"),
    )
    assert line.description == ("Capped-100GB data over 100GB quota 2025-01-01 to 2025-01-31: 3 GB started at 2.50 USD")
    assert overage_line(taxed, JANUARY, QUOTA) is None
    assert overage_line(plan(), JANUARY, 2 * QUOTA) is None  # throttling plans are never charged


def test_bad_usage_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        evaluate_quota(plan(), -1)
    with pytest.raises(TypeError):
        evaluate_quota(plan(), 1.5e9)  # type: ignore[arg-type]


def test_a_runaway_overage_charge_is_refused_not_billed() -> None:
    pricey = plan(**{**CHARGING, "overage_price_per_gb": Money(MAX_AMOUNT, USD)})
    assert evaluate_quota(pricey, QUOTA + 1).charge == Money(MAX_AMOUNT, USD)
    with pytest.raises(AmountOutOfRange, match=r"overage charge for 2 GB 2000000000\.00 USD is out of range"):
        evaluate_quota(pricey, QUOTA + GB + 1)
    with pytest.raises(AmountOutOfRange):
        overage_line(plan(**CHARGING), JANUARY, 2**63 - 1)  # a counter gone wild


@pytest.mark.parametrize("field", ["price", "setup_fee", "overage_price_per_gb"])
def test_plan_amounts_are_bounded(field: str) -> None:
    values = {**CHARGING, field: Money(MAX_AMOUNT + 1, USD)}
    with pytest.raises(PlanError, match=r"is out of range: at most 1000000000\.00 USD"):
        plan(**values)
