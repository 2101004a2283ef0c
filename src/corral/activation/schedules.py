"""When a sync runs next: manual, every interval, on a cron in a time zone, or after
another sync.

    schedule: manual                                    # only when someone asks
    schedule: {every: 30 minutes}                       # 30 minutes after the last run
    schedule: {cron: "0 6 * * 1-5", time_zone: Europe/Berlin}
    schedule: {after: Orders to warehouse}              # when that sync has delivered

Cron expressions read the wall clock of their time zone. On the day the clock springs
forward, a time it skips (02:30 in Europe/Berlin) fires once, one hour later by the
clock (03:30), which is the instant 02:30 would have been. On the day it falls back, a
time that happens twice (01:30 in America/New_York) fires once, at its first
occurrence. Missed fires are not replayed: a worker that was down for a day runs the
sync once, then keeps the schedule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from corral.activation.syncs import (
    AfterSchedule,
    CronSchedule,
    IntervalSchedule,
    Schedule,
    SyncDefinition,
)
from corral.errors import DefinitionError, UnknownReferenceError

# A cron that matches no date (the 30th of February) gives up after this many candidates.
_MAX_CANDIDATES = 2000


def next_due(
    schedule: Schedule,
    *,
    last_finished_at: datetime | None,
    now: datetime,
    sync: str | None = None,
) -> datetime | None:
    """The UTC time the next scheduled run is due, or None if time never makes it due.

    `manual` and `after:` schedules return None (the second is driven by `followers`).
    An interval is due one interval after the last run finished, or at once if the sync
    never ran. A cron is due at its first fire after the last run finished, or after
    `now` if it never ran. `sync` names the sync in error messages.
    """
    if schedule == "manual" or isinstance(schedule, AfterSchedule):
        return None
    now = _utc(now, "now")
    if isinstance(schedule, IntervalSchedule):
        if last_finished_at is None:
            return now
        return _utc(last_finished_at, "last_finished_at") + timedelta(seconds=schedule.seconds)
    anchor = now if last_finished_at is None else _utc(last_finished_at, "last_finished_at")
    return next_cron_fire(schedule, anchor, sync=sync)


def next_cron_fire(schedule: CronSchedule, after: datetime, *, sync: str | None = None) -> datetime:
    """The first fire of a cron schedule strictly after `after`, in UTC."""
    zone = _zone(schedule, sync)
    _check_cron(schedule, sync)
    after = _utc(after, "after")
    # Iterate wall-clock times in the schedule's zone; each becomes an instant with
    # fold=0, which moves a skipped time forward by the gap and picks the first of two.
    wall_times = croniter(schedule.cron, after.astimezone(zone).replace(tzinfo=None))
    try:
        for _ in range(_MAX_CANDIDATES):
            wall: datetime = wall_times.get_next(datetime)
            fire = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if fire > after:
                return fire
    except CroniterBadDateError:
        pass
    raise DefinitionError(
        f"the cron expression {schedule.cron!r} never fires",
        where=_where(sync),
        hint="check the day-of-month and month fields (there is no 30 February)",
    )


def validate_schedule(sync: SyncDefinition, syncs: Mapping[str, SyncDefinition]) -> None:
    """Raise DefinitionError for a cron that does not parse, an unknown time zone, or an
    `after:` that names a missing sync or closes a loop."""
    schedule = sync.schedule
    if isinstance(schedule, CronSchedule):
        _zone(schedule, sync.name)
        _check_cron(schedule, sync.name)
        next_cron_fire(schedule, datetime(2000, 1, 1, tzinfo=UTC), sync=sync.name)
    if isinstance(schedule, AfterSchedule):
        _check_after(sync.name, syncs)


def validate_schedules(syncs: Mapping[str, SyncDefinition]) -> None:
    for definition in syncs.values():
        validate_schedule(definition, syncs)


def followers(
    syncs: Mapping[str, SyncDefinition] | Iterable[SyncDefinition], finished: str
) -> list[str]:
    """The syncs scheduled `after:` the sync `finished`, sorted by name."""
    definitions = syncs.values() if isinstance(syncs, Mapping) else syncs
    return sorted(
        definition.name
        for definition in definitions
        if isinstance(definition.schedule, AfterSchedule) and definition.schedule.after == finished
    )


def is_timed(schedule: Schedule) -> bool:
    """Whether time alone makes this schedule due (an interval or a cron)."""
    return isinstance(schedule, IntervalSchedule | CronSchedule)


def fingerprint(schedule: Schedule) -> str:
    """A stable text for a schedule, so a changed schedule can be noticed."""
    if schedule == "manual":
        return "manual"
    return json.dumps(schedule.model_dump(), sort_keys=True)


def describe(schedule: Schedule) -> str:
    """A short human description: `every 1 hour`, `cron 0 6 * * * (Europe/Berlin)`."""
    if schedule == "manual":
        return "manual"
    if isinstance(schedule, IntervalSchedule):
        return f"every {schedule.every.strip()}"
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.cron} ({schedule.time_zone})"
    return f"after {schedule.after}"


def _check_after(name: str, syncs: Mapping[str, SyncDefinition]) -> None:
    seen = [name]
    current = syncs[name].schedule if name in syncs else None
    while isinstance(current, AfterSchedule):
        target = current.after
        if target not in syncs:
            raise UnknownReferenceError(
                f"the schedule follows the sync {target!r}, which does not exist",
                where=_where(seen[-1]),
                hint=f"name one of: {', '.join(sorted(syncs)) or '(no syncs defined)'}",
            )
        if target in seen:
            loop = " -> ".join([*seen[seen.index(target) :], target])
            raise DefinitionError(
                f"`after:` schedules form a loop: {loop}",
                where=_where(name),
                hint="give one sync in the loop a time schedule or `manual`",
            )
        seen.append(target)
        current = syncs[target].schedule


def _zone(schedule: CronSchedule, sync: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DefinitionError(
            f"the time zone {schedule.time_zone!r} is unknown",
            where=_where(sync),
            hint="use an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'",
        ) from None


def _check_cron(schedule: CronSchedule, sync: str | None) -> None:
    if not croniter.is_valid(schedule.cron) or len(schedule.cron.split()) != 5:
        raise DefinitionError(
            f"the cron expression {schedule.cron!r} does not parse",
            where=_where(sync),
            hint="write five fields: minute hour day-of-month month day-of-week, "
            "like '0 6 * * 1-5' for 06:00 on weekdays",
        )


def _where(sync: str | None) -> str:
    return f"sync {sync!r}, schedule" if sync else "schedule"


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC)
