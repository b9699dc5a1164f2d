"""Tax per line: exclusive and inclusive, rounded once, never mixing currencies."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.money import Money, currency
from policies.periods import Period
from policies.proration import ChargeLine
from policies.tax import TaxedAmount, TaxError, apply_tax, sum_taxed, tax_line, tax_lines

USD = currency("USD")
JPY = currency("JPY")
KWD = currency("KWD")


@pytest.mark.parametrize(
    ("amount", "rate", "net", "tax", "gross"),
    [
        (Money(3000, USD), "0.16", 3000, 480, 3480),  # 30.00 * 0.16 = 4.80
        (Money(1005, USD), "0.075", 1005, 75, 1080),  # 10.05 * 0.075 = 0.75375 -> 0.75
        (Money(3, USD), "0.16", 3, 0, 3),  # 0.03 * 0.16 = 0.0048 -> 0.00
        (Money(50, USD), "0.05", 50, 3, 53),  # 0.50 * 0.05 = 0.025 -> 0.03 (half up)
        (Money(-50, USD), "0.05", -50, -3, -53),  # credit: half rounds away from zero, mirror of the charge
        (Money(999, JPY), "0.10", 999, 100, 1099),  # 99.9 yen -> 100
        (Money(1234, KWD), "0.05", 1234, 62, 1296),  # 1.234 * 0.05 = 0.0617 -> 0.062
        (Money(3000, USD), "0", 3000, 0, 3000),
        (Money(3000, USD), "1", 3000, 3000, 6000),
    ],
)
def test_exclusive_tax(amount: Money, rate: str, net: int, tax: int, gross: int) -> None:
    cur = amount.currency
    assert apply_tax(amount, Decimal(rate), inclusive=False) == TaxedAmount(
        Money(net, cur), Money(tax, cur), Money(gross, cur)
    )


@pytest.mark.parametrize(
    ("amount", "rate", "net", "tax"),
    [
        (Money(3480, USD), "0.16", 3000, 480),  # 34.80 * 0.16 / 1.16 = 4.80 exactly
        (Money(1000, USD), "0.16", 862, 138),  # 10.00 * 0.16 / 1.16 = 1.37931... -> 1.38
        (Money(10000, USD), "0.2", 8333, 1667),  # 100.00 * 0.2 / 1.2 = 16.666... -> 16.67
        (Money(1100, JPY), "0.10", 1000, 100),  # 1100 * 0.1 / 1.1 = 100
        (Money(-1000, USD), "0.16", -862, -138),
        (Money(1, USD), "0.16", 1, 0),  # 0.01 * 0.16 / 1.16 = 0.00138 -> 0.00
    ],
)
def test_inclusive_tax(amount: Money, rate: str, net: int, tax: int) -> None:
    cur = amount.currency
    assert apply_tax(amount, Decimal(rate), inclusive=True) == TaxedAmount(Money(net, cur), Money(tax, cur), amount)


def test_rounding_mode_is_explicit() -> None:
    # 0.50 * 0.05 = 0.025: half-even keeps 0.02
    assert apply_tax(Money(50, USD), Decimal("0.05"), False, ROUND_HALF_EVEN).tax == Money(2, USD)


@pytest.mark.parametrize("rate", [Decimal(16), Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity")])
def test_bad_rates_are_refused(rate: Decimal) -> None:
    with pytest.raises(TaxError, match="fraction from 0 to 1"):
        apply_tax(Money(100, USD), rate, inclusive=False)


def test_float_rate_is_refused() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        apply_tax(Money(100, USD), 0.16, inclusive=False)  # type: ignore[arg-type]


def test_totals_sum_lines_and_refuse_mixed_currencies() -> None:
    lines = [apply_tax(Money(1000, USD), Decimal("0.16"), True), apply_tax(Money(3000, USD), Decimal("0.16"), False)]
    # 8.62 + 30.00 = 38.62 net; 1.38 + 4.80 = 6.18 tax; 10.00 + 34.80 = 44.80 gross
    assert sum_taxed(lines, USD) == TaxedAmount(Money(3862, USD), Money(618, USD), Money(4480, USD))
    assert sum_taxed([], USD).gross.is_zero()
    with pytest.raises(TypeError, match="USD and JPY"):
        sum_taxed([*lines, apply_tax(Money(100, JPY), Decimal("0.1"), False)], USD)


def test_taxed_amount_must_balance() -> None:
    with pytest.raises(TaxError, match="is not gross"):
        TaxedAmount(Money(100, USD), Money(16, USD), Money(117, USD))


rates = st.decimals(min_value=0, max_value=1, places=4)


@given(st.integers(min_value=-(10**12), max_value=10**12), rates, st.booleans())
def test_tax_properties(minor: int, rate: Decimal, inclusive: bool) -> None:
    amount = Money(minor, USD)
    taxed = apply_tax(amount, rate, inclusive)
    assert taxed.net + taxed.tax == taxed.gross
    assert (taxed.gross if inclusive else taxed.net) == amount
    exact = amount.amount * rate / (1 + rate) if inclusive else amount.amount * rate
    assert abs(taxed.tax.amount - exact) <= Decimal("0.005")  # one half-unit rounding, once
    mirrored = apply_tax(-amount, rate, inclusive)
    assert mirrored.tax == -taxed.tax


def test_invoice_lines_are_taxed_by_their_own_treatment() -> None:
    january = Period(date(2025, 1, 1), date(2025, 2, 1))
    lines = [
        ChargeLine("Home-10M", Money(3000, USD), january, "recurring", Decimal("0.16"), False),
        ChargeLine("Router rental", Money(1000, USD), january, "recurring", Decimal("0.16"), True),
        ChargeLine("Credit Home-10M", Money(-1065, USD), january, "credit", Decimal("0.16"), False),
    ]
    taxed, totals = tax_lines(lines, USD)
    # 30.00 * 0.16 = 4.80; 10.00 * 0.16 / 1.16 = 1.379.. -> 1.38; -10.65 * 0.16 = -1.704 -> -1.70
    assert [t.tax for t in taxed] == [Money(480, USD), Money(138, USD), Money(-170, USD)]
    # net 30.00 + 8.62 - 10.65 = 27.97; tax 4.80 + 1.38 - 1.70 = 4.48; gross 34.80 + 10.00 - 12.35 = 32.45
    assert totals == TaxedAmount(Money(2797, USD), Money(448, USD), Money(3245, USD))
    assert tax_line(lines[1]) == taxed[1]
