"""Calendar arithmetic for the reference evaluator: moments, durations, periods, anniversaries.

Times are naive wall-clock times in the workspace's time zone (`local_time` makes them so);
a date stands for midnight at the start of its day. Months and years move the calendar, so
31 March minus one month is the last day of February, and weeks start on Monday.

Part of `corral.audiences.evaluator`, and like it independent of the SQL compiler.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from corral.audiences.conditions import Duration, Window

ONE_DAY = timedelta(days=1)


def local_time(moment: datetime, time_zone: str) -> datetime:
    """A moment as a naive wall-clock time in `time_zone`."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


def midnight(day: date) -> datetime:
    """The start of a day."""
    return datetime(day.year, day.month, day.day)


def moment(value: date | datetime) -> datetime:
    """A date is compared as midnight at the start of its day."""
    return value if isinstance(value, datetime) else midnight(value)


def add_months(value: datetime, months: int) -> datetime:
    """Move the calendar: 31 March minus one month is the last day of February."""
    index = value.year * 12 + (value.month - 1) + months
    year, month = index // 12, index % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def shift(value: datetime, duration: Duration, sign: int = 1) -> datetime:
    """A time moved by a duration, forwards (`sign` 1) or backwards (-1)."""
    amount = sign * duration.amount
    if duration.unit == "years":
        return add_months(value, 12 * amount)
    if duration.unit == "months":
        return add_months(value, amount)
    return value + timedelta(**{duration.unit: amount})


def period_bounds(period: str, as_of: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a calendar period; weeks start on Monday."""
    which, unit = period.split("_", 1)
    today = as_of.date()
    if unit == "week":
        monday = midnight(today - timedelta(days=today.weekday()))
        start = monday - timedelta(weeks=1) if which == "last" else monday
        return start, start + timedelta(weeks=1)

    length = {"month": 1, "quarter": 3, "year": 12}[unit]
    first_month = (today.month - 1) // length * length + 1
    start = datetime(today.year, first_month, 1)
    if which == "last":
        start = add_months(start, -length)
    return start, add_months(start, length)


def anniversary_days(as_of: datetime, days: int) -> set[tuple[int, int]]:
    """(month, day) of the as-of day and the `days` after it; 29 Feb falls on 28 Feb."""
    found: set[tuple[int, int]] = set()
    for offset in range(days + 1):
        day = as_of.date() + timedelta(days=offset)
        found.add((day.month, day.day))
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            found.add((2, 29))
    return found


def window_test(window: Window, as_of: datetime) -> Callable[[datetime], bool]:
    """Whether a time lies in a `within` window."""
    if window.kind in ("last", "next"):
        assert window.duration is not None
        if window.kind == "last":
            low = shift(as_of, window.duration, -1)
            return lambda t: low < t <= as_of
        high = shift(as_of, window.duration)
        return lambda t: as_of < t <= high
    if window.kind == "period":
        assert window.period is not None
        start, end = period_bounds(window.period, as_of)
        return lambda t: start <= t < end
    if window.kind == "before":
        assert window.end is not None
        bound = moment(window.end)
        return lambda t: t < bound

    assert window.start is not None
    since = moment(window.start)
    if window.kind == "since":
        return lambda t: since <= t
    assert window.end is not None
    until = up_to(window.end)
    return lambda t: since <= t and until(t)


def up_to(end: date | datetime) -> Callable[[datetime], bool]:
    """The upper end of a between: a date covers its whole day, a timestamp is itself."""
    if isinstance(end, datetime):
        return lambda t: t <= end
    next_day = midnight(end) + ONE_DAY
    return lambda t: t < next_day
