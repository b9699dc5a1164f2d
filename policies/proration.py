"""Proration by the day: activation mid-period, plan changes and termination.

The rules, exactly:

* Recurring prices are invoiced in advance for a whole billing period (see :mod:`policies.periods`); the
  functions here return the invoice lines that correct that for events inside a period. A day counts when
  service is active at its start: an account activated on day ``d`` pays for ``d``; one terminated on ``d``
  (or changed to another plan on ``d``) stops paying the old price from ``d`` on.
* The share of a price ``P`` for the days ``[a, b)`` of a period of ``N`` days, where ``a`` and ``b`` are day
  offsets from the period start (``0 <= a <= b <= N``), is::

      cut(k)      = round_money(P * k / N)        # the exact fraction k/N in Decimal, rounded once
      share(a, b) = cut(b) - cut(a)

  ``cut(0)`` is zero and ``cut(N)`` is exactly ``P``, so a share that reaches an end of the period is one
  rounding of its exact value (activation: ``P - cut(a)``; a credit for unused days: ``P - cut(a)``) and the
  shares of consecutive pieces of a period always add up to exactly ``P``: an account that activates, changes
  plan and terminates in one period is never charged or credited a minor unit more than the days it had.
  Each share is within one minor unit of its exact value ``P * (b - a) / N``.
* Activation: a charge for ``[activated_on, period.end)`` (kind ``"recurring"`` when it is the whole period,
  else ``"prorated"``) and the setup fee, if any, dated the activation day (kind ``"setup_fee"``).
* Plan change on ``changed_on``: a credit of the old price's share of ``[changed_on, period.end)`` (kind
  ``"credit"``, a negative amount) and a charge of the new price's share of the same days. Both plans must
  have the same currency and cycle (a change of cycle is a termination and a new activation).
* Termination on ``terminated_on``: a credit of the price's share of ``[terminated_on, period.end)``; no line
  when ``terminated_on`` is the period's end.
* Every line carries its service period and the plan's tax rate and treatment, for :mod:`policies.tax`.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

from policies.money import Money, round_money
from policies.periods import Period
from policies.plans import PlanSpec
from policies.tax import check_tax_rate

__all__ = [
    "ChargeKind",
    "ChargeLine",
    "ProrationError",
    "activation",
    "plan_change",
    "recurring",
    "share",
    "termination",
]

ChargeKind = Literal["recurring", "prorated", "credit", "setup_fee", "overage"]
_KINDS: tuple[str, ...] = get_args(ChargeKind)
_CONTEXT = decimal.Context(prec=60)


class ProrationError(ValueError):
    """An event date or plan pair that proration cannot price."""


@dataclass(frozen=True)
class ChargeLine:
    """One invoice line: what it is, how much, for which service days, and how it is taxed.

    ``amount`` is negative for kind ``"credit"`` and not negative otherwise. ``tax_rate`` and
    ``tax_inclusive`` are the plan's (see :func:`policies.tax.apply_tax`).
    """

    description: str
    amount: Money
    period: Period
    kind: ChargeKind
    tax_rate: Decimal = Decimal(0)
    tax_inclusive: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Money):
            raise TypeError(f"charge amount must be Money, got {type(self.amount).__name__}")
        if not isinstance(self.period, Period):
            raise TypeError(f"charge period must be a Period, got {type(self.period).__name__}")
        if self.kind not in _KINDS:
            raise ProrationError(f"unknown charge kind {self.kind!r}: expected one of {', '.join(_KINDS)}")
        if not self.description.strip():
            raise ProrationError("charge description must not be empty")
        if self.kind == "credit" and self.amount.is_positive():
            raise ProrationError(f"credit {self.amount} must not be positive")
        if self.kind != "credit" and self.amount.is_negative():
            raise ProrationError(f"{self.kind} charge {self.amount} must not be negative")
        check_tax_rate(self.tax_rate)


def _offset(period: Period, day: date, what: str) -> int:
    if type(day) is not date:
        raise TypeError(f"{what} must be a date, got {type(day).__name__}")
    if not period.start <= day <= period.end:
        raise ProrationError(f"{what} {day} is outside the billing period {period}")
    return (day - period.start).days


def _cut(price: Money, days: int, period_days: int, rounding: str) -> Money:
    if days == period_days:
        return price
    exact = _CONTEXT.divide(_CONTEXT.multiply(price.amount, days), period_days)
    return round_money(exact, price.currency, rounding)


def share(price: Money, period: Period, start: date, end: date, rounding: str = ROUND_HALF_UP) -> Money:
    """The share of ``price`` for the days ``[start, end)`` of ``period`` (see the module rules)."""
    if not isinstance(price, Money):
        raise TypeError(f"price must be Money, got {type(price).__name__}")
    first, last = _offset(period, start, "start"), _offset(period, end, "end")
    if last < first:
        raise ProrationError(f"end {end} is before start {start}")
    return _cut(price, last, period.days, rounding) - _cut(price, first, period.days, rounding)


def _days_note(period: Period, start: date) -> str:
    used = (period.end - start).days
    return f"{start.isoformat()} to {period.last_day.isoformat()} ({used}/{period.days} days)"


def _line(plan: PlanSpec, description: str, amount: Money, period: Period, kind: ChargeKind) -> ChargeLine:
    return ChargeLine(description, amount, period, kind, plan.tax_rate, plan.tax_inclusive)


def recurring(plan: PlanSpec, period: Period) -> ChargeLine:
    """The full recurring charge of ``plan`` for ``period``."""
    return _line(plan, f"{plan.name} {period}", plan.price, period, "recurring")


def activation(plan: PlanSpec, period: Period, activated_on: date) -> list[ChargeLine]:
    """Lines for a service activated on ``activated_on`` inside ``period``: the (prorated) charge, then the
    setup fee if the plan has one."""
    if _offset(period, activated_on, "activation date") == period.days:
        raise ProrationError(f"activation date {activated_on} is the end of the billing period {period}")
    if activated_on == period.start:
        lines = [recurring(plan, period)]
    else:
        amount = share(plan.price, period, activated_on, period.end)
        served = Period(activated_on, period.end)
        lines = [_line(plan, f"{plan.name} {_days_note(period, activated_on)}", amount, served, "prorated")]
    if not plan.setup_fee.is_zero():
        setup_day = Period(activated_on, activated_on + timedelta(days=1))
        lines.append(_line(plan, f"{plan.name} setup fee", plan.setup_fee, setup_day, "setup_fee"))
    return lines


def plan_change(old: PlanSpec, new: PlanSpec, period: Period, changed_on: date) -> list[ChargeLine]:
    """Lines for a change from ``old`` to ``new`` taking effect on ``changed_on`` inside ``period``: a credit
    for the old plan's unused days, then the new plan's charge for the same days."""
    if old.currency != new.currency:
        raise ProrationError(f"cannot change from a {old.currency} plan to a {new.currency} plan")
    if old.cycle != new.cycle:
        raise ProrationError(
            f"cannot change from {old.cycle} plan {old.name!r} to {new.cycle} plan {new.name!r} mid-period: "
            "terminate the old service and activate the new one"
        )
    if _offset(period, changed_on, "change date") == period.days:
        raise ProrationError(f"change date {changed_on} is the end of the billing period {period}")
    remaining = Period(changed_on, period.end)
    note = _days_note(period, changed_on)
    credit = -share(old.price, period, changed_on, period.end)
    charge = share(new.price, period, changed_on, period.end)
    kind: ChargeKind = "recurring" if changed_on == period.start else "prorated"
    return [
        _line(old, f"Credit {old.name}, unused {note}", credit, remaining, "credit"),
        _line(new, f"{new.name} {note}", charge, remaining, kind),
    ]


def termination(plan: PlanSpec, period: Period, terminated_on: date) -> list[ChargeLine]:
    """Lines for a service ending on ``terminated_on`` (no service that day): a credit for the unused days of
    ``period``, or nothing when it ends with the period."""
    if _offset(period, terminated_on, "termination date") == period.days:
        return []
    credit = -share(plan.price, period, terminated_on, period.end)
    note = _days_note(period, terminated_on)
    return [_line(plan, f"Credit {plan.name}, unused {note}", credit, Period(terminated_on, period.end), "credit")]
