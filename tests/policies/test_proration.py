"""Proration by the day: activation, plan change, termination; pieces of a period add up exactly."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.money import Money, currency, total
from policies.periods import Cycle, Period, period_containing
from policies.plans import PlanSpec
from policies.proration import ChargeLine, ProrationError, activation, plan_change, recurring, share, termination
from policies.rates import RateLimit

USD = currency("USD")
D = date
JANUARY = Period(D(2025, 1, 1), D(2025, 2, 1))  # 31 days
FEBRUARY = Period(D(2025, 2, 1), D(2025, 3, 1))  # 28 days


def plan(name: str = "Home-10M", price: int = 3000, **over: Any) -> PlanSpec:
    values: dict[str, Any] = {
        "name": name,
        "rate": RateLimit(10_000_000, 2_000_000),
        "price": Money(price, USD),
        "cycle": "monthly",
        "prepaid": False,
        "setup_fee": Money(0, USD),
        "tax_rate": Decimal("0.16"),
    }
    values.update(over)
    return PlanSpec(**values)


def test_activation_on_the_first_day_is_the_full_price() -> None:
    lines = activation(plan(setup_fee=Money(5000, USD)), JANUARY, D(2025, 1, 1))
    assert [(line.kind, line.amount, line.period) for line in lines] == [
        ("recurring", Money(3000, USD), JANUARY),
        ("setup_fee", Money(5000, USD), Period(D(2025, 1, 1), D(2025, 1, 2))),
    ]
    assert lines[0].description == "Home-10M 2025-01-01 to 2025-01-31"
    assert lines[0].tax_rate == Decimal("0.16")


@pytest.mark.parametrize(
    ("period", "day", "amount", "days"),
    [
        # Jan 15-31 = 17 of 31 days: 30.00 - round(30.00*14/31 = 13.548..) = 30.00 - 13.55 = 16.45
        (JANUARY, D(2025, 1, 15), 1645, "17/31"),
        # Feb 20-28 = 9 of 28 days: 30.00 - round(30.00*19/28 = 20.357..) = 30.00 - 20.36 = 9.64
        (FEBRUARY, D(2025, 2, 20), 964, "9/28"),
        # last day only: 30.00 - round(30.00*30/31 = 29.032..) = 30.00 - 29.03 = 0.97
        (JANUARY, D(2025, 1, 31), 97, "1/31"),
    ],
)
def test_activation_mid_period(period: Period, day: date, amount: int, days: str) -> None:
    (line,) = activation(plan(), period, day)
    assert line.kind == "prorated"
    assert line.amount == Money(amount, USD)
    assert line.period == Period(day, period.end)
    assert line.description == f"Home-10M {day.isoformat()} to {period.last_day.isoformat()} ({days} days)"


def test_plan_change_credits_old_and_charges_new() -> None:
    lines = plan_change(plan(), plan("Home-50M", 5000), JANUARY, D(2025, 1, 11))
    remaining = Period(D(2025, 1, 11), D(2025, 2, 1))  # 21 of 31 days
    assert [(line.kind, line.amount, line.period) for line in lines] == [
        # 30.00 - round(30.00*10/31 = 9.677..) = 30.00 - 9.68 = 20.32 credited
        ("credit", Money(-2032, USD), remaining),
        # 50.00 - round(50.00*10/31 = 16.129..) = 50.00 - 16.13 = 33.87 charged
        ("prorated", Money(3387, USD), remaining),
    ]
    assert lines[0].description == "Credit Home-10M, unused 2025-01-11 to 2025-01-31 (21/31 days)"


def test_plan_change_on_the_first_day_swaps_whole_prices() -> None:
    lines = plan_change(plan(), plan("Home-50M", 5000), JANUARY, D(2025, 1, 1))
    assert [(line.kind, line.amount) for line in lines] == [
        ("credit", Money(-3000, USD)),
        ("recurring", Money(5000, USD)),
    ]


def test_termination() -> None:
    # Jan 21-31 unused = 11 days: 30.00 - round(30.00*20/31 = 19.354..) = 30.00 - 19.35 = 10.65
    (line,) = termination(plan(), JANUARY, D(2025, 1, 21))
    assert (line.kind, line.amount, line.period) == ("credit", Money(-1065, USD), Period(D(2025, 1, 21), D(2025, 2, 1)))
    assert termination(plan(), JANUARY, D(2025, 2, 1)) == []
    (whole,) = termination(plan(), JANUARY, D(2025, 1, 1))
    assert whole.amount == Money(-3000, USD)


def test_activation_then_termination_in_one_period_charges_the_days_used() -> None:
    # activated Jan 10: 30.00 - round(30.00*9/31 = 8.709..) = 30.00 - 8.71 = 21.29
    # terminated Jan 20: credit 30.00 - round(30.00*19/31 = 18.387..) = 30.00 - 18.39 = 11.61
    # net 21.29 - 11.61 = 9.68 = round(30.00*10/31 = 9.677..) for the 10 days Jan 10-19
    charged = activation(plan(), JANUARY, D(2025, 1, 10))
    credited = termination(plan(), JANUARY, D(2025, 1, 20))
    assert [line.amount for line in charged + credited] == [Money(2129, USD), Money(-1161, USD)]
    assert total((line.amount for line in charged + credited), USD) == Money(968, USD)


def test_daily_shares_add_up_to_the_price() -> None:
    week = Period(D(2025, 1, 6), D(2025, 1, 13))
    price = Money(1000, USD)  # 10.00 / 7 = 1.428571.. a day; rounding each day alone would sum to 7 * 1.43 = 10.01
    daily = [share(price, week, week.start + timedelta(days=i), week.start + timedelta(days=i + 1)) for i in range(7)]
    # cuts 1.43, 2.86, 4.29, 5.71, 7.14, 8.57, 10.00 -> differences:
    assert daily == [Money(m, USD) for m in (143, 143, 143, 142, 143, 143, 143)]
    assert total(daily, USD) == price


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: activation(plan(), JANUARY, D(2025, 2, 5)), "outside the billing period"),
        (lambda: activation(plan(), JANUARY, D(2025, 2, 1)), "is the end of the billing period"),
        (lambda: termination(plan(), JANUARY, D(2024, 12, 31)), "outside the billing period"),
        (lambda: share(Money(100, USD), JANUARY, D(2025, 1, 9), D(2025, 1, 5)), "before start"),
        (
            lambda: plan_change(plan(), plan("Weekly", 1000, cycle="weekly"), JANUARY, D(2025, 1, 5)),
            "terminate the old service",
        ),
    ],
)
def test_bad_events_are_refused(call: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        call()


def test_plan_change_refuses_mixed_currencies() -> None:
    eur = PlanSpec(
        name="Euro",
        rate=RateLimit(10_000_000, 2_000_000),
        price=Money(100, currency("EUR")),
        cycle="monthly",
        prepaid=False,
        setup_fee=Money(0, currency("EUR")),
    )
    with pytest.raises(ProrationError, match="cannot change from a USD plan to a EUR plan"):
        plan_change(plan(), eur, JANUARY, D(2025, 1, 5))


def test_charge_lines_are_validated() -> None:
    with pytest.raises(ProrationError, match=r"credit 1\.00 USD must not be positive"):
        ChargeLine("x", Money(100, USD), JANUARY, "credit")
    with pytest.raises(ProrationError, match="must not be negative"):
        ChargeLine("x", Money(-100, USD), JANUARY, "prorated")
    with pytest.raises(ProrationError, match="unknown charge kind"):
        ChargeLine("x", Money(100, USD), JANUARY, "discount")  # type: ignore[arg-type]
    assert recurring(plan(), JANUARY).amount == Money(3000, USD)


@given(
    st.integers(min_value=0, max_value=10**9),
    st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31)),
    st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31)),
    st.sampled_from(["monthly", "weekly"]),
    st.lists(st.integers(min_value=0, max_value=31), max_size=6),
)
def test_consecutive_pieces_add_up_to_the_price(
    minor: int, anchor: date, day: date, cycle: Cycle, cuts: list[int]
) -> None:
    period = period_containing(anchor, cycle, "anniversary", day)
    price = Money(minor, USD)
    offsets = sorted({0, period.days, *(c for c in cuts if c <= period.days)})
    bounds = [period.start + timedelta(days=o) for o in offsets]
    pieces = [share(price, period, a, b) for a, b in itertools.pairwise(bounds)]
    assert total(pieces, USD) == price  # exactly, whatever the cut points
    for (first, last), piece in zip(itertools.pairwise(offsets), pieces, strict=True):
        exact = price.amount * (last - first) / period.days
        assert abs(piece.amount - exact) < Decimal("0.01")  # within one minor unit of the exact share
    # activation at a cut point plus termination at a later one nets to the share of the days in between
    if len(bounds) >= 3:
        on, off = bounds[1], bounds[-2]
        p = plan(price=minor)
        charged = activation(p, period, on)[0].amount
        credited = termination(p, period, off)
        net = charged + (credited[0].amount if credited else Money.zero(USD))
        assert net == share(price, period, on, off)
