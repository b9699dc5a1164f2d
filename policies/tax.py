"""Tax per invoice line, exclusive or inclusive, rounded once per line.

The rules, exactly:

* A tax rate is a :class:`~decimal.Decimal` fraction from 0 to 1 inclusive (``Decimal("0.16")`` is 16 %).
* Exclusive: the line amount is the net. ``tax = round_money(net * rate)``; ``gross = net + tax``.
* Inclusive: the line amount is the gross. ``tax = round_money(gross * rate / (1 + rate))``;
  ``net = gross - tax``. Products and quotients are computed in Decimal at 50 significant digits before that
  one rounding.
* Tax is rounded once per line with :func:`~policies.money.round_money` (``ROUND_HALF_UP`` unless told),
  never per unit and never again on the total. Invoice totals are sums of the per-line figures, so the lines
  always add up to the totals. ``ROUND_HALF_UP`` rounds halves away from zero, so a credit line (negative
  amount) gets exactly the negated tax of the matching charge.
* Every figure stays in the line's currency; totals refuse to mix currencies.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from policies.money import Currency, Money, round_money

__all__ = [
    "TaxError",
    "Taxable",
    "TaxedAmount",
    "apply_tax",
    "check_tax_rate",
    "sum_taxed",
    "tax_line",
    "tax_lines",
]

_CONTEXT = decimal.Context(prec=50)


class TaxError(ValueError):
    """A tax rate or taxed amount that breaks the rules of this module."""


def check_tax_rate(rate: Decimal) -> Decimal:
    """Return ``rate`` if it is a Decimal fraction from 0 to 1 inclusive, else raise."""
    if not isinstance(rate, Decimal):
        raise TypeError(f"tax rate must be a Decimal fraction, got {type(rate).__name__}")
    if not (rate.is_finite() and 0 <= rate <= 1):
        raise TaxError(f"tax rate {rate} must be a fraction from 0 to 1 (0.16 for 16%)")
    return rate


class Taxable(Protocol):
    """Anything priced with its own tax treatment, such as :class:`policies.proration.ChargeLine`."""

    @property
    def amount(self) -> Money: ...

    @property
    def tax_rate(self) -> Decimal: ...

    @property
    def tax_inclusive(self) -> bool: ...


@dataclass(frozen=True)
class TaxedAmount:
    """Net, tax and gross of one line (or a total); ``net + tax == gross`` always holds."""

    net: Money
    tax: Money
    gross: Money

    def __post_init__(self) -> None:
        if self.net + self.tax != self.gross:
            raise TaxError(f"net {self.net} plus tax {self.tax} is not gross {self.gross}")

    @property
    def currency(self) -> Currency:
        """The currency of all three figures."""
        return self.gross.currency


def apply_tax(amount: Money, rate: Decimal, inclusive: bool, rounding: str = ROUND_HALF_UP) -> TaxedAmount:
    """Split one line ``amount`` into net, tax and gross at ``rate`` (see the module rules)."""
    if not isinstance(amount, Money):
        raise TypeError(f"apply_tax needs Money, got {type(amount).__name__}")
    check_tax_rate(rate)
    if not isinstance(inclusive, bool):
        raise TypeError("inclusive must be a bool")
    if inclusive:
        share = _CONTEXT.divide(_CONTEXT.multiply(amount.amount, rate), _CONTEXT.add(1, rate))
        tax = round_money(share, amount.currency, rounding)
        return TaxedAmount(net=amount - tax, tax=tax, gross=amount)
    tax = round_money(_CONTEXT.multiply(amount.amount, rate), amount.currency, rounding)
    return TaxedAmount(net=amount, tax=tax, gross=amount + tax)


def sum_taxed(lines: Iterable[TaxedAmount], currency: Currency) -> TaxedAmount:
    """Totals of already-taxed lines (zero when there are none); every line must be in ``currency``."""
    net = tax = gross = Money.zero(currency)
    for line in lines:
        net, tax, gross = net + line.net, tax + line.tax, gross + line.gross
    return TaxedAmount(net=net, tax=tax, gross=gross)


def tax_line(line: Taxable, rounding: str = ROUND_HALF_UP) -> TaxedAmount:
    """Net, tax and gross of one invoice line, by the line's own rate and treatment."""
    return apply_tax(line.amount, line.tax_rate, line.tax_inclusive, rounding)


def tax_lines(
    lines: Iterable[Taxable], currency: Currency, rounding: str = ROUND_HALF_UP
) -> tuple[list[TaxedAmount], TaxedAmount]:
    """Each line taxed once, and the invoice totals as the sums of those per-line figures."""
    taxed = [tax_line(line, rounding) for line in lines]
    return taxed, sum_taxed(taxed, currency)
