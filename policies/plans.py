"""Service plans, plan names and data quotas.

The rules, exactly:

* A plan name is 1-63 characters from ``A-Z a-z 0-9 . _ -``, starting with a letter or digit
  (``^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$``). Such a name is a valid RouterOS PPP profile and queue name and
  a valid ``tc`` class label without quoting, so the same name is used on every router.
* PPPoE logins and passwords follow the rules of :mod:`policies.naming`, with every other value a router carries.
* A quota is written as a number, an optional single space and a unit: ``B``; SI units ``kB``/``KB``/``k``,
  ``MB``/``M``, ``GB``/``G``, ``TB``/``T`` (powers of 1000, case-insensitive: 1 GB = 10^9 bytes, the unit
  quotas are sold and charged in); or binary units ``KiB``, ``MiB``, ``GiB``, ``TiB`` (powers of 1024).
  A bare number is bytes. Fractions are allowed when the result is a whole number of bytes
  (``"1.5GB"`` is 1,500,000,000). The quota must be above zero and at most 1 EB (10^18 bytes).
  :func:`format_quota` prints the shortest exact SI form (``100_000_000_000`` -> ``"100GB"``).
* A :class:`PlanSpec` is validated as a whole when built: prices are not negative and all in one currency;
  a quota needs its over-quota rule's parameter (``"throttle"`` needs a ``fair_use_rate`` no faster than the
  plan's rate in either direction; ``"charge"`` needs a positive ``overage_price_per_gb``); a plan without a
  quota has neither. ``tax_rate`` is a fraction (``Decimal("0.16")`` for 16 %) from 0 to 1 inclusive;
  ``tax_inclusive`` says whether ``price``, ``setup_fee`` and ``overage_price_per_gb`` already include it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

from policies.money import Currency, Money
from policies.periods import Cycle
from policies.rates import RateLimit

__all__ = [
    "GB",
    "MAX_QUOTA_BYTES",
    "Cycle",
    "OverQuota",
    "PlanError",
    "PlanSpec",
    "format_quota",
    "parse_quota",
    "validate_plan_name",
]

#: One gigabyte as quotas are sold and charged: 10^9 bytes.
GB = 1_000_000_000

#: The largest quota accepted: 1 EB (10^18 bytes).
MAX_QUOTA_BYTES = 10**18

OverQuota = Literal["throttle", "charge"]

_CYCLES: tuple[str, ...] = get_args(Cycle)
_OVER_QUOTA: tuple[str, ...] = get_args(OverQuota)

_PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_QUOTA = re.compile(r"([0-9]+)(?:\.([0-9]+))? ?([A-Za-z]*)")
_QUOTA_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class PlanError(ValueError):
    """A plan, plan name, login or quota that breaks the rules of this module."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 70 else text[:67] + "...")


def validate_plan_name(name: str) -> str:
    """Return ``name`` if it is a valid plan name (see the module rules), else raise :class:`PlanError`."""
    if not isinstance(name, str):
        raise TypeError(f"plan name must be a string, got {type(name).__name__}")
    if not _PLAN_NAME.fullmatch(name):
        raise PlanError(
            f"invalid plan name {_shown(name)}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_quota(text: str) -> int:
    """Parse a quota such as ``"100GB"``, ``"500 MB"``, ``"1.5T"`` or ``"20GiB"`` into bytes."""
    if not isinstance(text, str):
        raise TypeError(f"quota must be a string, got {type(text).__name__}")
    match = _QUOTA.fullmatch(text.strip())
    unit = _QUOTA_UNITS.get(match.group(3).lower()) if match else None
    if match is None or unit is None:
        raise PlanError(
            f"invalid quota {_shown(text)}: expected a number and a unit, a data volume like '100GB' or '500MB'"
        )
    whole, frac = match.group(1).lstrip("0") or "0", (match.group(2) or "").rstrip("0")
    if len(whole) > 19 or len(frac) > 13:
        raise PlanError(f"invalid quota {_shown(text)}: out of range")
    value = Decimal(f"{whole}.{frac or '0'}") * unit
    if value != value.to_integral_value():
        raise PlanError(f"invalid quota {_shown(text)}: not a whole number of bytes")
    quota = int(value)
    if not 1 <= quota <= MAX_QUOTA_BYTES:
        raise PlanError(f"invalid quota {_shown(text)}: must be above zero and at most 1 EB")
    return quota


def format_quota(quota_bytes: int) -> str:
    """Print a byte count in its shortest exact SI form: ``"100GB"``, ``"1500MB"``, ``"123B"``."""
    if type(quota_bytes) is not int:
        raise TypeError(f"quota must be an int number of bytes, got {type(quota_bytes).__name__}")
    if quota_bytes < 0:
        raise PlanError(f"byte count {quota_bytes} is negative")
    if quota_bytes == 0:
        return "0B"
    for suffix, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if quota_bytes % factor == 0:
            return f"{quota_bytes // factor}{suffix}"
    return f"{quota_bytes}B"


@dataclass(frozen=True)
class PlanSpec:
    """A service plan as sold: rates, price per cycle, quota rule and tax treatment.

    ``price`` is charged per ``cycle``; ``prepaid`` plans are paid before the period starts (service stops
    at the end of the paid period), other plans are invoiced and followed up by dunning. ``quota_bytes`` is
    the data allowance per billing period (``None`` for unlimited); past it, ``over_quota`` either throttles
    to ``fair_use_rate`` or charges ``overage_price_per_gb`` per started GB (see :mod:`policies.quota`).
    """

    name: str
    rate: RateLimit
    price: Money
    cycle: Cycle
    prepaid: bool
    setup_fee: Money
    quota_bytes: int | None = None
    over_quota: OverQuota = "throttle"
    fair_use_rate: RateLimit | None = None
    overage_price_per_gb: Money | None = None
    tax_rate: Decimal = Decimal(0)
    tax_inclusive: bool = False

    def __post_init__(self) -> None:
        validate_plan_name(self.name)
        where = f"plan {self.name!r}"
        if not isinstance(self.rate, RateLimit):
            raise TypeError(f"{where}: rate must be a RateLimit, got {type(self.rate).__name__}")
        for label, money in (("price", self.price), ("setup fee", self.setup_fee)):
            if not isinstance(money, Money):
                raise TypeError(f"{where}: {label} must be Money, got {type(money).__name__}")
            if money.is_negative():
                raise PlanError(f"{where}: {label} {money} is negative (prices must not be negative)")
        if self.setup_fee.currency != self.price.currency:
            raise PlanError(f"{where}: setup fee is in {self.setup_fee.currency}, price in {self.price.currency}")
        if self.cycle not in _CYCLES:
            raise PlanError(f"{where}: cycle {self.cycle!r} is not one of {', '.join(_CYCLES)}")
        if not isinstance(self.prepaid, bool) or not isinstance(self.tax_inclusive, bool):
            raise TypeError(f"{where}: prepaid and tax_inclusive must be bool")
        if self.over_quota not in _OVER_QUOTA:
            raise PlanError(f"{where}: over-quota rule {self.over_quota!r} is not one of {', '.join(_OVER_QUOTA)}")
        self._check_quota(where)
        self._check_tax(where)

    def _check_quota(self, where: str) -> None:
        fair, overage = self.fair_use_rate, self.overage_price_per_gb
        if self.quota_bytes is None:
            if fair is not None or overage is not None:
                raise PlanError(f"{where}: fair-use rate and overage price need a quota")
            return
        if type(self.quota_bytes) is not int:
            raise TypeError(f"{where}: quota must be an int number of bytes, got {type(self.quota_bytes).__name__}")
        if not 1 <= self.quota_bytes <= MAX_QUOTA_BYTES:
            raise PlanError(f"{where}: quota {self.quota_bytes} bytes must be above zero and at most 1 EB")
        if self.over_quota == "throttle":
            if fair is None:
                raise PlanError(f"{where}: over-quota rule 'throttle' needs a fair-use rate")
            if overage is not None:
                raise PlanError(f"{where}: over-quota rule 'throttle' takes no overage price")
            if not isinstance(fair, RateLimit):
                raise TypeError(f"{where}: fair-use rate must be a RateLimit, got {type(fair).__name__}")
            if fair.download > self.rate.download or fair.upload > self.rate.upload:
                raise PlanError(
                    f"{where}: fair-use rate {fair} is faster than the plan rate {self.rate} "
                    "(fair-use rates must not exceed the plan rates)"
                )
        else:
            if overage is None:
                raise PlanError(f"{where}: over-quota rule 'charge' needs an overage price per GB")
            if fair is not None:
                raise PlanError(f"{where}: over-quota rule 'charge' takes no fair-use rate")
            if not isinstance(overage, Money):
                raise TypeError(f"{where}: overage price must be Money, got {type(overage).__name__}")
            if overage.currency != self.price.currency:
                raise PlanError(f"{where}: overage price is in {overage.currency}, price in {self.price.currency}")
            if not overage.is_positive():
                raise PlanError(f"{where}: overage price per GB {overage} must be above zero")

    def _check_tax(self, where: str) -> None:
        if not isinstance(self.tax_rate, Decimal):
            raise TypeError(f"{where}: tax rate must be a Decimal fraction, got {type(self.tax_rate).__name__}")
        try:
            in_range = self.tax_rate.is_finite() and 0 <= self.tax_rate <= 1
        except InvalidOperation:
            in_range = False
        if not in_range:
            raise PlanError(f"{where}: tax rate {self.tax_rate} must be a fraction from 0 to 1 (0.16 for 16%)")

    @property
    def currency(self) -> Currency:
        """The plan's currency (all its prices share it)."""
        return self.price.currency
