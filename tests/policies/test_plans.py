"""Plans: names, logins, quotas and whole-plan validation."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.money import Money, currency
from policies.plans import (
    MAX_QUOTA_BYTES,
    PlanError,
    PlanSpec,
    format_quota,
    parse_quota,
    validate_plan_name,
)
from policies.rates import RateLimit

USD = currency("USD")


@pytest.mark.parametrize("name", ["Home-10M", "gold", "biz_50.v2", "0", "A" * 63, "a-b_c.d"])
def test_valid_plan_names(name: str) -> None:
    assert validate_plan_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-home", ".hidden", "_x", "home 10M", "A" * 64, "café", "a/b", "a;b", 'a"b', "a\n"]
)
def test_invalid_plan_names(name: str) -> None:
    with pytest.raises(PlanError, match="invalid plan name"):
        validate_plan_name(name)


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("100GB", 100_000_000_000),  # 100 * 10^9
        ("100gb", 100_000_000_000),
        ("100G", 100_000_000_000),
        ("500MB", 500_000_000),
        ("500 MB", 500_000_000),
        ("1.5TB", 1_500_000_000_000),  # 1.5 * 10^12
        ("2T", 2_000_000_000_000),
        ("750kB", 750_000),
        ("20GiB", 21_474_836_480),  # 20 * 2^30
        ("1MiB", 1_048_576),
        ("1000", 1000),
        ("1000B", 1000),
        ("1000000TB", MAX_QUOTA_BYTES),
    ],
)
def test_parse_quota(text: str, quota: int) -> None:
    assert parse_quota(text) == quota


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected a number"),
        ("GB", "expected a number"),
        ("100 GB bytes", "expected a number"),
        ("100PB", "expected a number"),
        ("-1GB", "expected a number"),
        ("100  GB", "expected a number"),
        ("0GB", "above zero"),
        ("1000001TB", "at most 1 EB"),
        ("1.5", "not a whole number"),
        ("1.0000000001GB", "not a whole number"),  # 10^9 + 0.1 bytes
    ],
)
def test_parse_quota_refuses(text: str, reason: str) -> None:
    with pytest.raises(PlanError, match=reason):
        parse_quota(text)


@pytest.mark.parametrize(
    ("quota", "text"),
    [(100_000_000_000, "100GB"), (1_500_000_000, "1500MB"), (123, "123B"), (2 * 10**12, "2TB"), (0, "0B")],
)
def test_format_quota(quota: int, text: str) -> None:
    assert format_quota(quota) == text


@given(st.integers(min_value=1, max_value=MAX_QUOTA_BYTES))
def test_quota_round_trip(quota: int) -> None:
    assert parse_quota(format_quota(quota)) == quota


def plan(**over: Any) -> PlanSpec:
    values: dict[str, Any] = {
        "name": "Home-10M",
        "rate": RateLimit(10_000_000, 2_000_000),
        "price": Money(3000, USD),
        "cycle": "monthly",
        "prepaid": False,
        "setup_fee": Money(0, USD),
    }
    values.update(over)
    return PlanSpec(**values)


def test_plan_defaults_are_unlimited_and_untaxed() -> None:
    p = plan()
    assert p.quota_bytes is None
    assert p.tax_rate == Decimal(0) and not p.tax_inclusive
    assert p.currency == USD


def test_plan_with_quota_rules() -> None:
    throttled = plan(quota_bytes=10**11, over_quota="throttle", fair_use_rate=RateLimit(1_000_000, 512_000))
    assert throttled.fair_use_rate == RateLimit(1_000_000, 512_000)
    charged = plan(quota_bytes=10**11, over_quota="charge", overage_price_per_gb=Money(250, USD))
    assert charged.overage_price_per_gb == Money(250, USD)
    assert replace(charged, tax_rate=Decimal("0.16"), tax_inclusive=True).tax_inclusive


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"name": "home 10M"}, "invalid plan name"),
        ({"price": Money(-1, USD)}, "price -0.01 USD is negative"),
        ({"setup_fee": Money(-500, USD)}, "setup fee -5.00 USD is negative"),
        ({"setup_fee": Money(500, currency("EUR"))}, "setup fee is in EUR, price in USD"),
        ({"cycle": "yearly"}, "cycle 'yearly'"),
        ({"fair_use_rate": RateLimit(1_000_000, 512_000)}, "need a quota"),
        ({"overage_price_per_gb": Money(1, USD)}, "need a quota"),
        ({"quota_bytes": 0, "fair_use_rate": RateLimit(1_000, 1_000)}, "above zero"),
        ({"quota_bytes": 10**9}, "'throttle' needs a fair-use rate"),
        ({"quota_bytes": 10**9, "over_quota": "charge"}, "'charge' needs an overage price"),
        ({"quota_bytes": 10**9, "over_quota": "block"}, "over-quota rule 'block'"),
        (
            {"quota_bytes": 10**9, "fair_use_rate": RateLimit(20_000_000, 1_000_000)},
            "faster than the plan rate",
        ),
        (
            {"quota_bytes": 10**9, "over_quota": "charge", "overage_price_per_gb": Money(0, USD)},
            "must be above zero",
        ),
        (
            {"quota_bytes": 10**9, "over_quota": "charge", "overage_price_per_gb": Money(1, currency("JPY"))},
            "overage price is in JPY",
        ),
        ({"tax_rate": Decimal(16)}, "fraction from 0 to 1"),
        ({"tax_rate": Decimal("-0.1")}, "fraction from 0 to 1"),
        ({"tax_rate": Decimal("NaN")}, "fraction from 0 to 1"),
    ],
)
def test_plan_refuses_inconsistent_specs(over: dict[str, Any], reason: str) -> None:
    with pytest.raises(PlanError, match=reason):
        plan(**over)


def test_plan_refuses_float_tax_rate() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        plan(tax_rate=0.16)
