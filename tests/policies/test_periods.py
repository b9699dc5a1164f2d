"""Billing periods: anniversary with month-end clamping, calendar months, weeks; local dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.periods import (
    AnchorMode,
    Cycle,
    Period,
    PeriodError,
    Schedule,
    iter_periods,
    local_date,
    next_period,
    period_containing,
    previous_period,
)

D = date


@pytest.mark.parametrize(
    ("anchor", "cycle", "mode", "day", "start", "end"),
    [
        # anchored on the 31st: clamped to short months, back to the 31st when the month has one
        (D(2025, 1, 31), "monthly", "anniversary", D(2025, 2, 15), D(2025, 1, 31), D(2025, 2, 28)),
        (D(2025, 1, 31), "monthly", "anniversary", D(2025, 2, 28), D(2025, 2, 28), D(2025, 3, 31)),
        (D(2025, 1, 31), "monthly", "anniversary", D(2025, 1, 30), D(2024, 12, 31), D(2025, 1, 31)),
        (D(2025, 1, 31), "monthly", "anniversary", D(2025, 4, 30), D(2025, 4, 30), D(2025, 5, 31)),
        (D(2024, 1, 31), "monthly", "anniversary", D(2024, 2, 29), D(2024, 2, 29), D(2024, 3, 31)),
        (D(2024, 1, 31), "monthly", "anniversary", D(2024, 2, 28), D(2024, 1, 31), D(2024, 2, 29)),
        (D(2025, 1, 30), "monthly", "anniversary", D(2025, 3, 1), D(2025, 2, 28), D(2025, 3, 30)),
        (D(2025, 3, 15), "monthly", "anniversary", D(2025, 3, 14), D(2025, 2, 15), D(2025, 3, 15)),
        (D(2025, 3, 15), "monthly", "anniversary", D(2025, 12, 20), D(2025, 12, 15), D(2026, 1, 15)),
        (D(2025, 3, 15), "monthly", "anniversary", D(2024, 1, 1), D(2023, 12, 15), D(2024, 1, 15)),
        (D(2025, 3, 15), "monthly", "calendar", D(2025, 2, 10), D(2025, 2, 1), D(2025, 3, 1)),
        (D(2025, 3, 15), "monthly", "calendar", D(2025, 12, 31), D(2025, 12, 1), D(2026, 1, 1)),
        # 2025-01-01 is a Wednesday
        (D(2025, 1, 1), "weekly", "anniversary", D(2025, 1, 6), D(2025, 1, 1), D(2025, 1, 8)),
        (D(2025, 1, 1), "weekly", "anniversary", D(2025, 1, 8), D(2025, 1, 8), D(2025, 1, 15)),
        (D(2025, 1, 1), "weekly", "anniversary", D(2024, 12, 31), D(2024, 12, 25), D(2025, 1, 1)),
        (D(2025, 1, 1), "weekly", "calendar", D(2025, 1, 1), D(2024, 12, 30), D(2025, 1, 6)),
        (D(2025, 1, 1), "weekly", "calendar", D(2025, 1, 5), D(2024, 12, 30), D(2025, 1, 6)),
    ],
)
def test_period_containing(anchor: date, cycle: Cycle, mode: AnchorMode, day: date, start: date, end: date) -> None:
    assert period_containing(anchor, cycle, mode, day) == Period(start, end)


def test_anniversary_on_the_31st_through_a_leap_year() -> None:
    periods = list(iter_periods(D(2024, 1, 31), "monthly", "anniversary", D(2024, 1, 31), D(2024, 6, 1)))
    assert [p.start for p in periods] == [
        D(2024, 1, 31),
        D(2024, 2, 29),
        D(2024, 3, 31),
        D(2024, 4, 30),
        D(2024, 5, 31),
    ]
    assert [p.days for p in periods] == [29, 31, 30, 31, 30]  # Jan31-Feb29 is 29 days, Feb29-Mar31 is 31, ...


def test_period_shape() -> None:
    january = Period(D(2025, 1, 1), D(2025, 2, 1))
    assert january.days == 31
    assert january.last_day == D(2025, 1, 31)
    assert D(2025, 1, 31) in january and D(2025, 2, 1) not in january
    assert str(january) == "2025-01-01 to 2025-01-31"
    with pytest.raises(PeriodError, match="must be after its start"):
        Period(D(2025, 1, 1), D(2025, 1, 1))
    with pytest.raises(TypeError):
        Period(datetime(2025, 1, 1, tzinfo=UTC), D(2025, 2, 1))


def test_next_previous_and_schedule() -> None:
    schedule = Schedule(D(2025, 1, 31), "monthly")
    feb = schedule.containing(D(2025, 2, 10))
    assert schedule.next(feb) == Period(D(2025, 2, 28), D(2025, 3, 31))
    assert schedule.previous(feb) == Period(D(2024, 12, 31), D(2025, 1, 31))
    assert next_period(D(2025, 1, 1), "weekly", "calendar", Period(D(2024, 12, 30), D(2025, 1, 6))) == Period(
        D(2025, 1, 6), D(2025, 1, 13)
    )
    assert previous_period(D(2025, 1, 1), "monthly", "calendar", Period(D(2025, 1, 1), D(2025, 2, 1))) == Period(
        D(2024, 12, 1), D(2025, 1, 1)
    )
    assert len(list(schedule.periods(D(2025, 1, 31), D(2026, 1, 31)))) == 12


def test_dates_beyond_the_calendar_are_refused() -> None:
    with pytest.raises(PeriodError, match="outside the supported calendar"):
        period_containing(D(2025, 1, 31), "monthly", "anniversary", D(9999, 12, 31))
    with pytest.raises(PeriodError, match="outside the supported calendar"):
        period_containing(D(2025, 1, 1), "weekly", "anniversary", D(1, 1, 1))  # Wednesday week before year 1


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(PeriodError, match="unknown billing cycle 'daily'"):
        period_containing(D(2025, 1, 1), "daily", "calendar", D(2025, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(PeriodError, match="unknown anchor mode"):
        Schedule(D(2025, 1, 1), "monthly", "fiscal")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        period_containing(D(2025, 1, 1), "monthly", "calendar", datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("instant", "tz", "day"),
    [
        (datetime(2025, 1, 31, 22, 30, tzinfo=UTC), "Africa/Nairobi", D(2025, 2, 1)),  # 01:30 EAT (+3)
        (datetime(2025, 2, 1, 3, 0, tzinfo=UTC), "America/Bogota", D(2025, 1, 31)),  # 22:00 (-5)
        (datetime(2025, 3, 9, 6, 30, tzinfo=UTC), "America/New_York", D(2025, 3, 9)),  # 01:30 EST, DST day
        (datetime(2025, 3, 9, 3, 59, tzinfo=UTC), "America/New_York", D(2025, 3, 8)),  # 22:59 EST
    ],
)
def test_local_date(instant: datetime, tz: str, day: date) -> None:
    assert local_date(instant, tz) == day


def test_local_date_refuses_naive_and_unknown_zones() -> None:
    with pytest.raises(PeriodError, match="naive datetime"):
        local_date(datetime(2025, 1, 1), "UTC")  # noqa: DTZ001 - the naive value under test
    with pytest.raises(PeriodError, match="unknown time zone 'Mars/Olympus'"):
        local_date(datetime(2025, 1, 1, tzinfo=UTC), "Mars/Olympus")


days = st.dates(min_value=D(1900, 1, 1), max_value=D(2200, 12, 31))


@given(days, days, st.sampled_from(["monthly", "weekly"]), st.sampled_from(["anniversary", "calendar"]))
def test_periods_tile_the_calendar(anchor: date, day: date, cycle: Cycle, mode: AnchorMode) -> None:
    period = period_containing(anchor, cycle, mode, day)
    assert day in period
    following = next_period(anchor, cycle, mode, period)
    assert following.start == period.end
    assert previous_period(anchor, cycle, mode, following) == period
    assert period_containing(anchor, cycle, mode, period.last_day) == period
    if cycle == "weekly":
        assert period.days == 7
        assert period.start.weekday() == (anchor.weekday() if mode == "anniversary" else 0)
    else:
        assert 28 <= period.days <= 31
        wanted = anchor.day if mode == "anniversary" else 1
        assert period.start.day == wanted or (
            period.start.day < wanted and (period.start + timedelta(days=1)).month != period.start.month
        )
