"""Next due times for interval and cron schedules (across DST changes), and validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from corral.activation.schedules import (
    describe,
    followers,
    next_cron_fire,
    next_due,
    validate_schedule,
    validate_schedules,
)
from corral.activation.syncs import (
    AfterSchedule,
    CronSchedule,
    IntervalSchedule,
    Schedule,
    SyncDefinition,
)
from corral.errors import DefinitionError, UnknownReferenceError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def sync(name: str, schedule: Schedule) -> SyncDefinition:
    return SyncDefinition(
        name=name,
        model="users",
        destination="CRM",
        mode="upsert",  # type: ignore[arg-type]
        mapping={"email": "email"},
        schedule=schedule,
    )


def fires(schedule: CronSchedule, after: datetime, count: int) -> list[datetime]:
    times = []
    for _ in range(count):
        after = next_cron_fire(schedule, after)
        times.append(after)
    return times


def test_manual_and_after_are_never_due_by_time() -> None:
    assert next_due("manual", last_finished_at=None, now=NOW) is None
    assert next_due(AfterSchedule(after="a"), last_finished_at=NOW, now=NOW) is None


def test_interval_counts_from_the_last_run_or_is_due_at_once() -> None:
    every = IntervalSchedule(every="90 minutes")
    assert next_due(every, last_finished_at=None, now=NOW) == NOW
    assert next_due(every, last_finished_at=NOW, now=NOW) == NOW + timedelta(minutes=90)


def test_cron_in_utc_counts_from_the_last_run() -> None:
    daily = CronSchedule(cron="15 6 * * *")
    assert next_due(daily, last_finished_at=None, now=NOW) == datetime(
        2026, 6, 2, 6, 15, tzinfo=UTC
    )
    finished = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    assert next_due(daily, last_finished_at=finished, now=NOW) == datetime(
        2026, 6, 1, 6, 15, tzinfo=UTC
    )


def test_cron_reads_the_wall_clock_of_its_time_zone() -> None:
    weekdays = CronSchedule(cron="0 9 * * 1-5", time_zone="America/New_York")
    # Friday 2026-06-05 09:00 EDT, then Monday 2026-06-08 09:00 EDT.
    assert fires(weekdays, datetime(2026, 6, 5, 0, 0, tzinfo=UTC), 2) == [
        datetime(2026, 6, 5, 13, 0, tzinfo=UTC),
        datetime(2026, 6, 8, 13, 0, tzinfo=UTC),
    ]


def test_berlin_spring_forward_fires_a_skipped_time_once_an_hour_later() -> None:
    # On 2026-03-29 Berlin's clocks jump from 02:00 CET to 03:00 CEST: 02:30 does not exist.
    nightly = CronSchedule(cron="30 2 * * *", time_zone="Europe/Berlin")
    assert fires(nightly, datetime(2026, 3, 28, 0, 0, tzinfo=UTC), 3) == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30 CEST, the instant 02:30 CET would be
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]


def test_berlin_spring_forward_keeps_quarter_hours_in_order() -> None:
    quarterly = CronSchedule(cron="*/30 * * * *", time_zone="Europe/Berlin")
    times = fires(quarterly, datetime(2026, 3, 29, 0, 15, tzinfo=UTC), 5)
    assert times == sorted(set(times))
    assert times[0] == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET


def test_new_york_fall_back_fires_a_repeated_time_once() -> None:
    # On 2026-11-01 New York's clocks fall back from 02:00 EDT to 01:00 EST: 01:30 happens twice.
    nightly = CronSchedule(cron="30 1 * * *", time_zone="America/New_York")
    assert fires(nightly, datetime(2026, 10, 31, 12, 0, tzinfo=UTC), 2) == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT, the first one
        datetime(2026, 11, 2, 6, 30, tzinfo=UTC),  # 01:30 EST the next day
    ]


def test_new_york_fall_back_hourly_skips_the_repeated_hour() -> None:
    hourly = CronSchedule(cron="0 * * * *", time_zone="America/New_York")
    assert fires(hourly, datetime(2026, 11, 1, 4, 30, tzinfo=UTC), 3) == [
        datetime(2026, 11, 1, 5, 0, tzinfo=UTC),  # 01:00 EDT
        datetime(2026, 11, 1, 7, 0, tzinfo=UTC),  # 02:00 EST; 01:00 EST is the same wall time
        datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_due(IntervalSchedule(every="1 hour"), last_finished_at=None, now=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("schedule", "message", "hint"),
    [
        (CronSchedule(cron="0 6 * *"), "does not parse", "five fields"),
        (CronSchedule(cron="61 6 * * *"), "does not parse", "five fields"),
        (CronSchedule(cron="0 6 30 2 *"), "never fires", "30 February"),
        (CronSchedule(cron="0 6 * * *", time_zone="Europe/Bonn"), "time zone", "IANA"),
        (CronSchedule(cron="0 6 * * *", time_zone="CEST+2"), "time zone", "IANA"),
    ],
)
def test_bad_cron_schedules_name_the_sync_and_the_fix(
    schedule: CronSchedule, message: str, hint: str
) -> None:
    definition = sync("VIPs to CRM", schedule)
    with pytest.raises(DefinitionError, match=message) as raised:
        validate_schedule(definition, {definition.name: definition})
    assert raised.value.where == "sync 'VIPs to CRM', schedule"
    assert hint in (raised.value.hint or "")


def test_after_must_name_an_existing_sync_without_loops() -> None:
    a = sync("a", "manual")
    b = sync("b", AfterSchedule(after="a"))
    c = sync("c", AfterSchedule(after="b"))
    validate_schedules({"a": a, "b": b, "c": c})

    orphan = sync("d", AfterSchedule(after="missing"))
    with pytest.raises(UnknownReferenceError, match="'missing'") as raised:
        validate_schedules({"a": a, "d": orphan})
    assert "a, d" in (raised.value.hint or "")

    x = sync("x", AfterSchedule(after="y"))
    y = sync("y", AfterSchedule(after="x"))
    with pytest.raises(DefinitionError, match="loop: x -> y -> x"):
        validate_schedules({"x": x, "y": y})


def test_followers_are_the_syncs_scheduled_after_one() -> None:
    definitions = [
        sync("a", IntervalSchedule(every="1 hour")),
        sync("c", AfterSchedule(after="a")),
        sync("b", AfterSchedule(after="a")),
        sync("d", AfterSchedule(after="b")),
    ]
    assert followers(definitions, "a") == ["b", "c"]
    assert followers({d.name: d for d in definitions}, "b") == ["d"]
    assert followers(definitions, "d") == []


def test_describe() -> None:
    assert describe("manual") == "manual"
    assert describe(IntervalSchedule(every="2 hours")) == "every 2 hours"
    assert describe(CronSchedule(cron="0 6 * * *", time_zone="Europe/Berlin")) == (
        "cron 0 6 * * * (Europe/Berlin)"
    )
    assert describe(AfterSchedule(after="a")) == "after a"
