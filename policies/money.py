"""Exact money: integer minor units with a mandatory ISO 4217 currency.

The rules, exactly:

* A :class:`Money` is an integer count of the currency's minor units (cents for USD, yen for JPY, fils for
  KWD) plus its :class:`Currency`. It is immutable. A ``float`` anywhere (as the amount, as a multiplier, as a
  value to round) raises ``TypeError``; so does ``bool``.
* Arithmetic between two amounts (``+``, ``-``) and every comparison (``<``, ``<=``, ``>``, ``>=``, ``==``,
  ``!=``) requires the same currency; mixing currencies raises ``TypeError`` rather than answering. Comparing a
  ``Money`` with something that is not a ``Money`` with ``==`` is simply unequal.
* Multiplication is by ``int`` only (a quantity). Anything fractional (a tax rate, a proration fraction) is
  computed in :class:`~decimal.Decimal` by the caller and turned back into money with :func:`round_money`, the
  one rounding helper, which rounds once, with an explicit rounding mode (``ROUND_HALF_UP`` unless told).
* :meth:`Money.parse` reads a plain decimal: an optional sign, digits, optionally a dot and more digits
  (``"30"``, ``"30.00"``, ``"-5.5"``, ``"+0.99"``). Surrounding whitespace is ignored. Thousands separators
  (``"1,000.00"``), a decimal comma, exponents (``"1e3"``), currency symbols, ``NaN`` and ``Infinity`` are
  refused: a separator means different things in different locales, and an amount must never be guessed.
  Digits beyond the currency's minor units are refused unless they are zeros (``"30.000"`` USD is exactly
  30.00; ``"30.005"`` USD raises ``ValueError("... USD has 2 decimal places")``). Parsed amounts must fit a
  signed 64-bit count of minor units, which is what the database stores.
* :data:`MAX_AMOUNT` bounds every amount a person or a system enters (a price, a setup fee, a payment, a
  refund, a credit note, a bank statement row, a payment processor's event): at most 10^11 minor units in
  magnitude (a billion dollars; a hundred billion yen), far beyond anything an ISP bills, yet small enough that
  sums and products of such amounts by any bounded quantity stay far from the database's 64-bit limit.
  :func:`check_amount` is the one check; every entry point calls it (through the service layer) before
  writing anything, and its :class:`AmountOutOfRange` message names the limit.
* :func:`allocate` splits an amount by integer weights with the largest-remainder method: each share is the
  floor of its exact part, and the minor units left over go one each to the shares with the largest
  fractional remainders (earliest share first on ties). The shares always add up to the total exactly. A
  negative total is split as its absolute value and every share negated, so splitting is symmetric.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "MAX_AMOUNT",
    "MAX_MINOR",
    "ROUNDING_MODES",
    "AmountOutOfRange",
    "Currency",
    "Money",
    "UnknownCurrency",
    "allocate",
    "check_amount",
    "currency",
    "round_money",
    "total",
]

#: The largest magnitude, in minor units, that :meth:`Money.parse` accepts (a signed 64-bit integer).
MAX_MINOR = 2**63 - 1

#: The largest magnitude, in minor units, of any amount edgebill accepts from outside (see the module rules).
MAX_AMOUNT = 10**11

#: The rounding modes :func:`round_money` accepts (the :mod:`decimal` constants).
ROUNDING_MODES = frozenset(
    {
        decimal.ROUND_CEILING,
        decimal.ROUND_DOWN,
        decimal.ROUND_FLOOR,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_HALF_UP,
        decimal.ROUND_UP,
        decimal.ROUND_05UP,
    }
)


class AmountOutOfRange(ValueError):
    """An amount beyond :data:`MAX_AMOUNT` minor units."""


class UnknownCurrency(ValueError):
    """The code is not an active ISO 4217 currency with a minor unit."""


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency: its three-letter code and its exponent (number of decimal places)."""

    code: str
    minor_units: int

    def __post_init__(self) -> None:
        if not (isinstance(self.code, str) and re.fullmatch(r"[A-Z]{3}", self.code)):
            raise ValueError(f"currency code must be three upper-case letters, got {self.code!r}")
        if type(self.minor_units) is not int or not 0 <= self.minor_units <= 4:
            raise ValueError(f"currency {self.code} minor units must be an integer 0-4, got {self.minor_units!r}")

    def __str__(self) -> str:
        return self.code


# Active ISO 4217 currencies (list one, published by the ISO 4217 maintenance agency) with their exponents.
# Funds, precious metals, the SDR and testing codes (no minor unit, or not money an ISP bills in) are left out.
_ISO_4217: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2, "BRL": 2,
    "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHF": 2, "CLF": 4, "CLP": 0,
    "CNY": 2, "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2,
    "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2,
    "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2,
    "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2,
    "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2,
    "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
    "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0,
    "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2,
    "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2,
    "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2,
    "UGX": 0, "USD": 2, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2, "VND": 0, "VUV": 0, "WST": 2,
    "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

_CURRENCIES: dict[str, Currency] = {code: Currency(code, units) for code, units in _ISO_4217.items()}


def currency(code: str) -> Currency:
    """Return the ISO 4217 currency for ``code`` (case-insensitive, surrounding spaces ignored).

    Raises :class:`UnknownCurrency` for anything that is not an active currency code.
    """
    if not isinstance(code, str):
        raise TypeError(f"currency code must be a string, got {type(code).__name__}")
    found = _CURRENCIES.get(code.strip().upper())
    if found is None:
        raise UnknownCurrency(f"unknown currency {code!r}: expected an ISO 4217 code such as 'USD'")
    return found


def _resolve(cur: Currency | str) -> Currency:
    if isinstance(cur, Currency):
        return cur
    if isinstance(cur, str):
        return currency(cur)
    raise TypeError(f"expected a Currency or a currency code, got {type(cur).__name__}")


_AMOUNT = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")


@dataclass(frozen=True, order=False)
class Money:
    """An exact amount: ``minor`` units of ``currency`` (``Money(3000, USD)`` is 30.00 USD)."""

    minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise TypeError(f"Money needs an integer count of minor units, got {type(self.minor).__name__}")
        if not isinstance(self.currency, Currency):
            raise TypeError(f"Money needs a Currency, got {type(self.currency).__name__}")

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, currency: Currency | str) -> Money:
        """Read a plain decimal amount such as ``"30.00"``, ``"30"`` or ``"-5.5"`` (see the module rules)."""
        cur = _resolve(currency)
        if not isinstance(text, str):
            raise TypeError(f"Money.parse needs a string, got {type(text).__name__}")
        shown = text if len(text) <= 40 else text[:37] + "..."
        match = _AMOUNT.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"invalid amount {shown!r}: expected digits with an optional sign and decimal point, "
                "like '30.00' or '-5.5' (no thousands separators)"
            )
        sign, whole, frac = match.group(1), match.group(2), match.group(3) or ""
        places = cur.minor_units
        if len(frac) > places:
            if frac[places:].strip("0"):
                raise ValueError(f"invalid amount {shown!r}: {cur.code} has {places} decimal places")
            frac = frac[:places]
        if len(whole) > 30:
            raise ValueError(f"invalid amount {shown!r}: out of range")
        minor = int(whole) * 10**places + int(frac.ljust(places, "0") or "0")
        if minor > MAX_MINOR:
            raise ValueError(f"invalid amount {shown!r}: out of range")
        return cls(-minor if sign == "-" else minor, cur)

    @classmethod
    def zero(cls, currency: Currency | str) -> Money:
        """Nothing, in ``currency``."""
        return cls(0, _resolve(currency))

    # -- views ----------------------------------------------------------------------------------------------

    @property
    def amount(self) -> Decimal:
        """The exact value as a Decimal with exactly ``minor_units`` places (``Decimal("30.00")``)."""
        return Decimal(f"{self.minor}E-{self.currency.minor_units}")

    def to_json(self) -> str:
        """The value as a decimal string with exactly ``minor_units`` places: ``"30.00"``, ``"-0.05"``, ``"500"``."""
        places = self.currency.minor_units
        whole, frac = divmod(abs(self.minor), 10**places)
        sign = "-" if self.minor < 0 else ""
        if places == 0:
            return f"{sign}{whole}"
        return f"{sign}{whole}.{frac:0{places}d}"

    def __str__(self) -> str:
        return f"{self.to_json()} {self.currency.code}"

    def __repr__(self) -> str:
        return f"Money({self.to_json()!r}, {self.currency.code!r})"

    def is_zero(self) -> bool:
        """True when the amount is exactly nothing."""
        return self.minor == 0

    def is_negative(self) -> bool:
        """True when the amount is below zero (a credit)."""
        return self.minor < 0

    def is_positive(self) -> bool:
        """True when the amount is above zero."""
        return self.minor > 0

    # -- arithmetic -----------------------------------------------------------------------------------------

    def _same(self, other: Money, op: str) -> None:
        if other.currency != self.currency:
            raise TypeError(f"cannot {op} {self.currency.code} and {other.currency.code} amounts")

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "add")
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "subtract")
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError(
                f"Money can only be multiplied by an int, got {type(factor).__name__}; "
                "compute fractions in Decimal and use round_money()"
            )
        return Money(self.minor * factor, self.currency)

    __rmul__ = __mul__

    # -- comparisons ----------------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor == other.minor

    def __hash__(self) -> int:
        return hash((self.minor, self.currency))

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor >= other.minor


def check_amount(amount: Money, what: str = "amount") -> Money:
    """Return ``amount`` if its magnitude is at most :data:`MAX_AMOUNT` minor units, else raise
    :class:`AmountOutOfRange` with a message naming ``what`` and the limit in the amount's currency."""
    if not isinstance(amount, Money):
        raise TypeError(f"check_amount needs Money, got {type(amount).__name__}")
    if abs(amount.minor) > MAX_AMOUNT:
        limit = Money(MAX_AMOUNT, amount.currency)
        shown = amount.to_json()
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise AmountOutOfRange(f"{what} {shown} {amount.currency.code} is out of range: at most {limit}")
    return amount


def total(amounts: Iterable[Money], currency: Currency | str) -> Money:
    """The sum of ``amounts`` (zero when empty); every amount must be in ``currency``."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result


def round_money(value: Decimal | int, currency: Currency | str, rounding: str = ROUND_HALF_UP) -> Money:
    """Round an exact Decimal value to the currency's minor unit, once, with ``rounding``.

    This is the only place a fractional value becomes money. ``float`` is refused (``TypeError``); NaN and
    infinities are refused (``ValueError``); the rounding mode must be one of the :mod:`decimal` constants.
    """
    cur = _resolve(currency)
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"round_money needs a Decimal, got {type(value).__name__}")
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {rounding!r}")
    dec = Decimal(value)
    if not dec.is_finite():
        raise ValueError(f"cannot round {value!r} to money")
    # Scaling by a power of ten only moves the exponent, so it is exact given enough precision.
    digits = len(dec.as_tuple().digits)
    ctx = decimal.Context(prec=digits + cur.minor_units + 2, rounding=rounding, Emax=decimal.MAX_EMAX)
    scaled = dec.scaleb(cur.minor_units, context=ctx)
    return Money(int(scaled.to_integral_value(rounding=rounding, context=ctx)), cur)


def allocate(total: Money, weights: Sequence[int]) -> list[Money]:
    """Split ``total`` in proportion to integer ``weights`` without losing a minor unit.

    Largest-remainder method (see the module docstring); the result has one share per weight, in order, and
    the shares add up to ``total`` exactly. Weights must be non-negative integers, at least one positive.
    """
    if not isinstance(total, Money):
        raise TypeError(f"allocate needs a Money total, got {type(total).__name__}")
    if len(weights) == 0:
        raise ValueError("allocate needs at least one weight")
    for weight in weights:
        if type(weight) is not int:
            raise TypeError(f"allocation weights must be integers, got {type(weight).__name__}")
        if weight < 0:
            raise ValueError(f"allocation weights must not be negative, got {weight}")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("allocation weights must not all be zero")
    magnitude = abs(total.minor)
    shares: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        share, remainder = divmod(magnitude * weight, weight_sum)
        shares.append(share)
        remainders.append(remainder)
    left = magnitude - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in order[:left]:
        shares[index] += 1
    sign = -1 if total.minor < 0 else 1
    return [Money(sign * share, total.currency) for share in shares]
