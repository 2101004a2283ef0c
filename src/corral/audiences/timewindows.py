"""Relative time, made absolute: every window becomes an interval of naive local times.

All windows are computed in Python from the caller's as-of time, in the workspace time
zone, so the SQL holds only literal bounds. Timestamp columns are read as wall-clock
times in the workspace time zone; a date column counts as midnight of its day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from corral.audiences.conditions import Duration, Window


@dataclass(frozen=True)
class Interval:
    """Times t with `low (<|<=) t (<|<=) high`; None is unbounded on that side."""

    low: datetime | None = None
    high: datetime | None = None
    low_inclusive: bool = True
    high_inclusive: bool = False


def local_as_of(as_of: datetime, time_zone: str) -> datetime:
    """The as-of time as a naive wall-clock time in the workspace time zone."""
    if as_of.tzinfo is None:
        return as_of
    return as_of.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


def shift(moment: datetime, duration: Duration, sign: int = 1) -> datetime:
    """`moment` moved by a duration; months and years keep the day where it exists."""
    amount = duration.amount * sign
    if duration.unit in ("months", "years"):
        months = amount * (12 if duration.unit == "years" else 1)
        return add_months(moment, months)
    return moment + timedelta(**{duration.unit: amount})


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def as_datetime(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else midnight(value)


def period_interval(period: str, as_of: datetime) -> Interval:
    """A calendar period containing (this_*) or before (last_*) the as-of time."""
    which, unit = period.split("_", 1)
    today = as_of.date()
    if unit == "week":
        start = today - timedelta(days=today.weekday())
        step = timedelta(weeks=1)
        begin = midnight(start) - (step if which == "last" else timedelta(0))
        return Interval(begin, begin + step)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    first_month = (today.month - 1) // months * months + 1
    begin = datetime(today.year, first_month, 1)
    if which == "last":
        begin = add_months(begin, -months)
    return Interval(begin, add_months(begin, months))


def window_interval(window: Window, as_of: datetime) -> Interval:
    """The interval of a `within` window."""
    if window.kind == "last":
        assert window.duration is not None
        return Interval(shift(as_of, window.duration, -1), as_of, False, True)
    if window.kind == "next":
        assert window.duration is not None
        return Interval(as_of, shift(as_of, window.duration), False, True)
    if window.kind == "period":
        assert window.period is not None
        return period_interval(window.period, as_of)
    low = _start_bound(window.start) if window.start is not None else None
    high = _end_bound(window.end) if window.end is not None else None
    if window.kind == "before":
        assert window.end is not None
        return Interval(None, as_datetime(window.end))
    return Interval(low, high, True, isinstance(window.end, datetime))


def _start_bound(value: date | datetime) -> datetime:
    return as_datetime(value)


def _end_bound(value: date | datetime) -> datetime:
    """An end date covers its whole day; an end timestamp is itself."""
    if isinstance(value, datetime):
        return value
    return midnight(value) + timedelta(days=1)


def anniversary_days(as_of: datetime, days: int) -> list[tuple[int, int]]:
    """(month, day) pairs from the as-of day through `days` days later, both included.

    In a year without 29 February, a 29 February anniversary falls on 28 February.
    """
    pairs: list[tuple[int, int]] = []
    for offset in range(days + 1):
        day = as_of.date() + timedelta(days=offset)
        pairs.append((day.month, day.day))
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            pairs.append((2, 29))
    return pairs
