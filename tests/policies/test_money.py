"""Money: exact minor units, one rounding helper, no float, no mixed currencies."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.money import (
    MAX_AMOUNT,
    MAX_MINOR,
    AmountOutOfRange,
    Currency,
    Money,
    UnknownCurrency,
    allocate,
    check_amount,
    currency,
    round_money,
    total,
)

USD = currency("USD")
EUR = currency("EUR")
JPY = currency("JPY")
KWD = currency("KWD")


@pytest.mark.parametrize(
    ("code", "minor_units"),
    [("USD", 2), ("usd", 2), (" eur ", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_currency_lookup_knows_iso_exponents(code: str, minor_units: int) -> None:
    cur = currency(code)
    assert cur.code == code.strip().upper()
    assert cur.minor_units == minor_units


@pytest.mark.parametrize("code", ["", "US", "XXX", "XAU", "dollars", "ZZZ"])
def test_unknown_currency_is_refused(code: str) -> None:
    with pytest.raises(UnknownCurrency, match="unknown currency"):
        currency(code)


def test_currency_values_are_validated() -> None:
    with pytest.raises(ValueError, match="three upper-case letters"):
        Currency("usd", 2)
    with pytest.raises(ValueError, match="minor units"):
        Currency("USD", 7)


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [
        ("30.00", USD, 3000),
        ("30", USD, 3000),
        ("-5.5", USD, -550),  # -5.50 -> -550 cents
        ("+0.99", USD, 99),
        ("  12.3 ", EUR, 1230),
        ("30.000", USD, 3000),  # trailing zero beyond 2 places is exact, accepted
        ("1500", JPY, 1500),
        ("1500.00", JPY, 1500),
        ("1.234", KWD, 1234),
        ("0", USD, 0),
        ("-0.00", USD, 0),
    ],
)
def test_parse_reads_plain_decimals(text: str, cur: Currency, minor: int) -> None:
    assert Money.parse(text, cur) == Money(minor, cur)


def test_parse_accepts_a_currency_code() -> None:
    assert Money.parse("1", "eur") == Money(100, EUR)


@pytest.mark.parametrize(
    ("text", "cur", "message"),
    [
        ("30.005", USD, "USD has 2 decimal places"),
        ("1.5", JPY, "JPY has 0 decimal places"),
        ("1.2345", KWD, "KWD has 3 decimal places"),
        ("1,000.00", USD, "no thousands separators"),
        ("30,00", USD, "invalid amount"),
        ("", USD, "invalid amount"),
        ("abc", USD, "invalid amount"),
        ("NaN", USD, "invalid amount"),
        ("Infinity", USD, "invalid amount"),
        ("-inf", USD, "invalid amount"),
        ("1e3", USD, "invalid amount"),
        ("$30", USD, "invalid amount"),
        ("30.", USD, "invalid amount"),
        (".5", USD, "invalid amount"),
        ("--5", USD, "invalid amount"),
        ("92233720368547758.08", USD, "out of range"),  # 2**63 cents
    ],
)
def test_parse_refuses_bad_text(text: str, cur: Currency, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Money.parse(text, cur)


def test_parse_largest_amount() -> None:
    assert Money.parse("92233720368547758.07", USD).minor == MAX_MINOR


def test_float_is_refused_everywhere() -> None:
    with pytest.raises(TypeError):
        Money(30.0, USD)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, USD)
    with pytest.raises(TypeError):
        Money(100, USD) * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100, USD) * Decimal("1.5")  # type: ignore[operator]
    with pytest.raises(TypeError):
        round_money(1.5, USD)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.parse(30.0, USD)  # type: ignore[arg-type]


def test_views() -> None:
    m = Money(3000, USD)
    assert m.amount == Decimal("30.00")
    assert str(m.amount) == "30.00"
    assert m.to_json() == "30.00"
    assert str(m) == "30.00 USD"
    assert repr(m) == "Money('30.00', 'USD')"
    assert Money(-5, USD).to_json() == "-0.05"
    assert Money(500, JPY).to_json() == "500"
    assert str(Money(-1234, KWD)) == "-1.234 KWD"
    assert Money(7, KWD).amount == Decimal("0.007")
    assert Money.zero("usd").to_json() == "0.00"


def test_predicates() -> None:
    assert Money(0, USD).is_zero()
    assert Money(-1, USD).is_negative() and not Money(-1, USD).is_positive()
    assert Money(1, USD).is_positive() and not Money(1, USD).is_zero()


def test_arithmetic() -> None:
    a, b = Money(1050, USD), Money(250, USD)
    assert a + b == Money(1300, USD)
    assert a - b == Money(800, USD)
    assert b - a == Money(-800, USD)
    assert -a == Money(-1050, USD)
    assert abs(Money(-3, USD)) == Money(3, USD)
    assert a * 3 == Money(3150, USD)
    assert 3 * a == Money(3150, USD)
    assert total([a, b, b], USD) == Money(1550, USD)
    assert total([], "USD") == Money.zero(USD)


def test_comparisons() -> None:
    assert Money(1, USD) < Money(2, USD) <= Money(2, USD)
    assert Money(3, USD) > Money(2, USD) >= Money(2, USD)
    assert Money(2, USD) != Money(3, USD)
    assert Money(0, USD) != 0
    assert max(Money(5, USD), Money(9, USD)) == Money(9, USD)
    assert len({Money(5, USD), Money(5, USD)}) == 1


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: a == b,
        lambda a, b: a != b,
    ],
)
def test_mixing_currencies_raises(op: object) -> None:
    assert callable(op)
    with pytest.raises(TypeError, match="USD and EUR"):
        op(Money(100, USD), Money(100, EUR))


def test_money_is_immutable() -> None:
    m = Money(100, USD)
    with pytest.raises(AttributeError):
        m.minor = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "cur", "rounding", "minor"),
    [
        (Decimal("1.005"), USD, None, 101),  # half up: 100.5 cents -> 101
        (Decimal("1.004999"), USD, None, 100),
        (Decimal("-1.005"), USD, None, -101),  # half up rounds away from zero
        (Decimal("1.005"), USD, ROUND_HALF_EVEN, 100),  # 100.5 -> even 100
        (Decimal("1.015"), USD, ROUND_HALF_EVEN, 102),  # 101.5 -> even 102
        (Decimal("1.009"), USD, ROUND_DOWN, 100),
        (Decimal("2.5"), JPY, None, 3),
        (Decimal("0.0005"), KWD, None, 1),  # 0.5 fils -> 1
        (Decimal("30"), USD, None, 3000),
        (7, USD, None, 700),
        (Decimal("123456789012345678901234567890.125"), USD, None, 12345678901234567890123456789013),
        (Decimal("1E+3"), USD, None, 100000),
    ],
)
def test_round_money(value: Decimal, cur: Currency, rounding: str | None, minor: int) -> None:
    result = round_money(value, cur) if rounding is None else round_money(value, cur, rounding)
    assert result == Money(minor, cur)


def test_round_money_refuses_non_finite_and_unknown_modes() -> None:
    with pytest.raises(ValueError, match="cannot round"):
        round_money(Decimal("NaN"), USD)
    with pytest.raises(ValueError, match="cannot round"):
        round_money(Decimal("-Infinity"), USD)
    with pytest.raises(ValueError, match="unknown rounding mode"):
        round_money(Decimal("1"), USD, "ROUND_SIDEWAYS")


@pytest.mark.parametrize(
    ("minor", "weights", "shares"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # 33.33 each, 1 cent left -> first (ties go to the earliest)
        (-100, [1, 1, 1], [-34, -33, -33]),  # symmetric
        (100, [1, 2], [33, 67]),  # 33.33 / 66.67: remainder .67 is larger -> second gets the cent
        (1000, [0, 1, 0], [0, 1000, 0]),
        (5, [3, 3, 3, 1], [2, 2, 1, 0]),  # 1.5,1.5,1.5,0.5 -> floors 1,1,1,0, 2 left, equal .5 remainders -> first two
        (0, [1, 2], [0, 0]),
        (10, [1], [10]),
    ],
)
def test_allocate(minor: int, weights: list[int], shares: list[int]) -> None:
    assert allocate(Money(minor, USD), weights) == [Money(s, USD) for s in shares]


@pytest.mark.parametrize(
    ("weights", "error"),
    [([], ValueError), ([0, 0], ValueError), ([1, -1], ValueError), ([1.5], TypeError)],
)
def test_allocate_refuses_bad_weights(weights: list[int], error: type[Exception]) -> None:
    with pytest.raises(error):
        allocate(Money(100, USD), weights)


amounts = st.integers(min_value=-(10**15), max_value=10**15).map(lambda m: Money(m, USD))


@given(amounts, amounts, amounts)
def test_addition_is_associative_and_subtraction_inverts(a: Money, b: Money, c: Money) -> None:
    assert (a + b) + c == a + (b + c)
    assert (a + b) - b == a
    assert a - b == -(b - a)


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(any),
)
def test_allocate_sums_exactly_and_is_fair(minor: int, weights: list[int]) -> None:
    total_money = Money(minor, USD)
    shares = allocate(total_money, weights)
    assert total(shares, USD) == total_money
    weight_sum = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        exact = Decimal(minor) * weight / weight_sum
        assert abs(Decimal(share.minor) - exact) < 1  # never off by a whole unit
        if weight == 0:
            assert share.is_zero()


@given(st.integers(min_value=-(10**18), max_value=10**18), st.sampled_from([USD, JPY, KWD]))
def test_parse_and_to_json_round_trip(minor: int, cur: Currency) -> None:
    m = Money(minor, cur)
    assert Money.parse(m.to_json(), cur) == m
    assert Decimal(m.to_json()) == m.amount
    assert round_money(m.amount, cur) == m


def test_check_amount_bounds_every_amount_at_one_limit() -> None:
    assert MAX_AMOUNT == 10**11
    for minor in (0, 1, MAX_AMOUNT, -MAX_AMOUNT):
        assert check_amount(Money(minor, USD)) == Money(minor, USD)
    for minor in (MAX_AMOUNT + 1, -MAX_AMOUNT - 1, 9 * 10**16, 2**63 - 1, 2**100):
        with pytest.raises(AmountOutOfRange, match=r"out of range: at most 1000000000\.00 USD"):
            check_amount(Money(minor, USD), "payment")
    with pytest.raises(AmountOutOfRange, match=r"^price 100000000001 JPY is out of range: at most 100000000000 JPY$"):
        check_amount(Money(MAX_AMOUNT + 1, currency("JPY")), "price")
    with pytest.raises(TypeError):
        check_amount(5, "price")  # type: ignore[arg-type]
