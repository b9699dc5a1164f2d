"""Billing periods, as calendar dates in the account's time zone.

The rules, exactly:

* A :class:`Period` is a half-open range of dates: it starts on ``start`` and ends just before ``end``
  (``end`` is exclusive, so ``Period(2025-01-01, 2025-02-01)`` is the 31 days of January and the next period
  starts on the previous one's ``end``). Periods are never empty.
* Dates are local dates in the account's time zone; :func:`local_date` turns an aware instant into one.
  A period therefore starts and ends at local midnight, whatever the UTC offset or daylight saving.
* A schedule is an anchor date (usually the day the account was activated), a cycle and an anchor mode:

  - ``monthly`` + ``anniversary``: periods start on the anchor's day of the month, clamped to the month's
    last day when the month is shorter. The anchor day is applied to every month afresh, so an account
    anchored on 31 January has periods starting Jan 31, Feb 28 (Feb 29 in a leap year), Mar 31, Apr 30.
  - ``monthly`` + ``calendar``: periods are calendar months, starting on the 1st.
  - ``weekly`` + ``anniversary``: seven-day periods starting on the anchor's weekday.
  - ``weekly`` + ``calendar``: ISO weeks, Monday to Sunday.

  The schedule extends both before and after the anchor date; :func:`period_containing` answers for any day.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "AnchorMode",
    "Cycle",
    "Period",
    "PeriodError",
    "Schedule",
    "iter_periods",
    "local_date",
    "next_period",
    "period_containing",
    "previous_period",
    "zone",
]

Cycle = Literal["monthly", "weekly"]
AnchorMode = Literal["anniversary", "calendar"]

_CYCLES: tuple[str, ...] = get_args(Cycle)
_ANCHOR_MODES: tuple[str, ...] = get_args(AnchorMode)


class PeriodError(ValueError):
    """A malformed period, schedule or time zone."""


@dataclass(frozen=True)
class Period:
    """The dates from ``start`` up to but not including ``end``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if type(value) is not date:
                raise TypeError(f"period bounds must be dates, got {type(value).__name__}")
        if self.end <= self.start:
            raise PeriodError(f"period end {self.end} must be after its start {self.start}")

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        """The last date inside the period (the day before ``end``)."""
        return self.end - timedelta(days=1)

    def __contains__(self, day: object) -> bool:
        return type(day) is date and self.start <= day < self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.last_day.isoformat()}"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``"Africa/Nairobi"``), or :class:`PeriodError` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PeriodError(f"unknown time zone {name!r}") from exc


def local_date(instant: datetime, tz: ZoneInfo | str) -> date:
    """The calendar date of an aware ``instant`` in time zone ``tz``; naive datetimes are refused."""
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise PeriodError(f"naive datetime {instant.isoformat()} has no time zone")
    return instant.astimezone(zone(tz) if isinstance(tz, str) else tz).date()


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def _check_schedule(anchor_date: date, cycle: str, anchor_mode: str) -> None:
    if type(anchor_date) is not date:
        raise TypeError(f"anchor date must be a date, got {type(anchor_date).__name__}")
    if cycle not in _CYCLES:
        raise PeriodError(f"unknown billing cycle {cycle!r}: expected one of {', '.join(_CYCLES)}")
    if anchor_mode not in _ANCHOR_MODES:
        raise PeriodError(f"unknown anchor mode {anchor_mode!r}: expected one of {', '.join(_ANCHOR_MODES)}")


def period_containing(anchor_date: date, cycle: Cycle, anchor_mode: AnchorMode, day: date) -> Period:
    """The billing period of the schedule (``anchor_date``, ``cycle``, ``anchor_mode``) that contains ``day``."""
    _check_schedule(anchor_date, cycle, anchor_mode)
    if type(day) is not date:
        raise TypeError(f"day must be a date, got {type(day).__name__}")
    try:
        return _containing(anchor_date, cycle, anchor_mode, day)
    except (OverflowError, ValueError) as exc:
        raise PeriodError(f"the billing period containing {day} is outside the supported calendar") from exc


def _containing(anchor_date: date, cycle: str, anchor_mode: str, day: date) -> Period:
    if cycle == "weekly":
        first_weekday = anchor_date.weekday() if anchor_mode == "anniversary" else 0
        start = day - timedelta(days=(day.weekday() - first_weekday) % 7)
        return Period(start, start + timedelta(days=7))
    anchor_day = anchor_date.day if anchor_mode == "anniversary" else 1
    candidate = _clamped(day.year, day.month, anchor_day)
    if candidate <= day:
        year, month = _add_months(day.year, day.month, 1)
        return Period(candidate, _clamped(year, month, anchor_day))
    year, month = _add_months(day.year, day.month, -1)
    return Period(_clamped(year, month, anchor_day), candidate)


def next_period(anchor_date: date, cycle: Cycle, anchor_mode: AnchorMode, period: Period) -> Period:
    """The period that starts where ``period`` ends."""
    return period_containing(anchor_date, cycle, anchor_mode, period.end)


def previous_period(anchor_date: date, cycle: Cycle, anchor_mode: AnchorMode, period: Period) -> Period:
    """The period that ends where ``period`` starts."""
    return period_containing(anchor_date, cycle, anchor_mode, period.start - timedelta(days=1))


def iter_periods(
    anchor_date: date, cycle: Cycle, anchor_mode: AnchorMode, start: date, until: date | None = None
) -> Iterator[Period]:
    """Consecutive periods from the one containing ``start``; stops before the first starting on or after
    ``until`` (endless when ``until`` is None)."""
    period = period_containing(anchor_date, cycle, anchor_mode, start)
    while until is None or period.start < until:
        yield period
        period = period_containing(anchor_date, cycle, anchor_mode, period.end)


@dataclass(frozen=True)
class Schedule:
    """An account's billing schedule: the same rules as the module functions, bound to one anchor."""

    anchor_date: date
    cycle: Cycle
    anchor_mode: AnchorMode = "anniversary"

    def __post_init__(self) -> None:
        _check_schedule(self.anchor_date, self.cycle, self.anchor_mode)

    def containing(self, day: date) -> Period:
        """The period that contains ``day``."""
        return period_containing(self.anchor_date, self.cycle, self.anchor_mode, day)

    def next(self, period: Period) -> Period:
        """The period after ``period``."""
        return next_period(self.anchor_date, self.cycle, self.anchor_mode, period)

    def previous(self, period: Period) -> Period:
        """The period before ``period``."""
        return previous_period(self.anchor_date, self.cycle, self.anchor_mode, period)

    def periods(self, start: date, until: date | None = None) -> Iterator[Period]:
        """Consecutive periods from the one containing ``start`` (see :func:`iter_periods`)."""
        return iter_periods(self.anchor_date, self.cycle, self.anchor_mode, start, until)
