"""A connection's `schedule` as an APScheduler 3 trigger, and its next fire times.

Forms and how they keep time:
- every_minutes: an interval from `at` — real elapsed time, so a DST change
  neither doubles nor skips a run.
- every_hours, times_per_day: the wall-clock times of day from `at`
  (cron), so "every 6 hours from 06:00" stays 00/06/12/18 local time.
- days_of_week, days_of_month, weekday_of_month: wall clock at `at`; a day
  of the month a month lacks (31 in April) is skipped that month.
`spread_minutes` moves every fire time of a connection later by a fixed amount
derived from its id (`spread_offset`), in elapsed time.
The n-th weekday is `day="2nd tue"` / `day="last fri"`: APScheduler reads
`day_of_week="fri#2"` as every Friday (see PITFALLS.md).

Wall-clock forms across a DST change: a time the clock skips (02:30 on the
spring-forward night) fires right after the change (03:30, summer time); a
time the clock passes twice (02:30 on the fall-back night) fires once, at
its first occurrence — a daily run never runs twice in one night.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.config import Connection
from connector.config.schedule import Schedule
from connector.settings import Settings

_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", "last": "last"}
_MICROSECOND = timedelta(microseconds=1)


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]  # apscheduler has no type hints
    """A CronTrigger that fires each wall-clock time of a day once, DST changes included.

    APScheduler's CronTrigger fires a repeated local time (the fall-back hour) twice
    and reports a skipped one (the spring-forward hour) as a local time that never
    existed; this one skips the second occurrence and reports the real local time.
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and _second_occurrence(fire):
            fire = super().get_next_fire_time(fire, fire)
        return None if fire is None else _real_local_time(fire)


def _second_occurrence(moment: datetime) -> bool:
    """Whether this local time is the repeat of one the clock already showed (fall-back)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _real_local_time(moment: datetime) -> datetime:
    """The same instant as a local time the clock really shows (02:30 skipped → 03:30)."""
    return moment.astimezone(UTC).astimezone(moment.tzinfo)


def spread_offset(connection_id: str, minutes: int) -> timedelta:
    """A connection's fixed place in [0, `minutes`): the same in every process and daemon
    (a digest of its id, to the second), so fire claims across daemons agree."""
    if minutes <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(connection_id.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % (minutes * 60))


def spread_of(connection: Connection, settings: Settings) -> timedelta:
    """The connection's spread: its schedule's `spread_minutes`, else the daemon's default."""
    schedule = connection.schedule
    minutes = schedule.spread_minutes if schedule and schedule.spread_minutes is not None else None
    if minutes is None:
        minutes = settings.schedule_spread_minutes
    return spread_offset(connection.id, minutes)


def _shift(moment: datetime, delta: timedelta) -> datetime:
    """`moment` moved by elapsed time (UTC arithmetic: a DST change moves nothing twice)."""
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


class SpreadTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler has no type hints
    """Another trigger's fire times, each `offset` later."""

    def __init__(self, inner: BaseTrigger, offset: timedelta) -> None:
        self.inner = inner
        self.offset = offset

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        previous = None if previous_fire_time is None else _shift(previous_fire_time, -self.offset)
        fire: datetime | None = self.inner.get_next_fire_time(previous, _shift(now, -self.offset))
        return None if fire is None else _shift(fire, self.offset)

    def __str__(self) -> str:
        return f"{self.inner} + {self.offset}"


def build_trigger(
    schedule: Schedule, *, now: datetime | None = None, offset: timedelta = timedelta(0)
) -> BaseTrigger:
    """The trigger for one schedule, in the schedule's time zone, `offset` later (spread)."""
    trigger = _form_trigger(schedule, now=now)
    return SpreadTrigger(trigger, offset) if offset else trigger


def _form_trigger(schedule: Schedule, *, now: datetime | None) -> BaseTrigger:
    return FORM_TRIGGERS[schedule.form](schedule, ZoneInfo(schedule.timezone), now)


def _every_minutes(schedule: Schedule, zone: ZoneInfo, now: datetime | None) -> BaseTrigger:
    current = (now or datetime.now(zone)).astimezone(zone)
    anchor = current.replace(hour=schedule.hour, minute=schedule.minute, second=0, microsecond=0)
    if anchor > current:
        anchor -= timedelta(days=1)
    every = schedule.every_minutes or 0
    return IntervalTrigger(minutes=every, start_date=anchor, timezone=zone)


def _every_hours(schedule: Schedule, zone: ZoneInfo, _now: datetime | None) -> BaseTrigger:
    first = schedule.hour * 60 + schedule.minute
    return _times_of_day(first, (schedule.every_hours or 0) * 60, zone)


def _times_per_day(schedule: Schedule, zone: ZoneInfo, _now: datetime | None) -> BaseTrigger:
    first = schedule.hour * 60 + schedule.minute
    return _times_of_day(first, 1440 // (schedule.times_per_day or 1), zone)


def _days_of_week(schedule: Schedule, zone: ZoneInfo, _now: datetime | None) -> BaseTrigger:
    days = ",".join(schedule.days_of_week or [])
    return WallClockCronTrigger(
        day_of_week=days, hour=schedule.hour, minute=schedule.minute, timezone=zone
    )


def _days_of_month(schedule: Schedule, zone: ZoneInfo, _now: datetime | None) -> BaseTrigger:
    days = ",".join(str(day) for day in sorted(set(schedule.days_of_month or [])))
    return WallClockCronTrigger(day=days, hour=schedule.hour, minute=schedule.minute, timezone=zone)


def _weekday_of_month(schedule: Schedule, zone: ZoneInfo, _now: datetime | None) -> BaseTrigger:
    which = schedule.weekday_of_month
    if which is None:
        raise ValueError(f"schedule has no weekday_of_month: {schedule!r}")
    day = f"{_ORDINALS[which.ordinal]} {which.weekday}"
    return WallClockCronTrigger(day=day, hour=schedule.hour, minute=schedule.minute, timezone=zone)


FormTrigger = Callable[[Schedule, ZoneInfo, "datetime | None"], BaseTrigger]

FORM_TRIGGERS: dict[str, FormTrigger] = {
    "every_minutes": _every_minutes,
    "every_hours": _every_hours,
    "times_per_day": _times_per_day,
    "days_of_week": _days_of_week,
    "days_of_month": _days_of_month,
    "weekday_of_month": _weekday_of_month,
}
"""Each schedule form -> its trigger. Adding a form: its field on `Schedule`, its name in
`SCHEDULE_FORMS` (a test checks they agree with this table) and one function here."""


def _times_of_day(first_minute: int, step: int, zone: ZoneInfo) -> BaseTrigger:
    """Fire at `first_minute` after midnight and every `step` minutes around the clock."""
    by_minute: dict[int, list[int]] = {}
    for offset in range(0, 1440, step):
        total = (first_minute + offset) % 1440
        by_minute.setdefault(total % 60, []).append(total // 60)
    triggers = [
        WallClockCronTrigger(hour=",".join(map(str, sorted(hours))), minute=minute, timezone=zone)
        for minute, hours in sorted(by_minute.items())
    ]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def next_fire_times(
    schedule: Schedule,
    count: int = 5,
    *,
    now: datetime | None = None,
    offset: timedelta = timedelta(0),
) -> list[datetime]:
    """The next `count` fire times, in the schedule's time zone, spread by `offset`."""
    zone = ZoneInfo(schedule.timezone)
    current = (now or datetime.now(zone)).astimezone(zone)
    trigger = build_trigger(schedule, now=current, offset=offset)
    times: list[datetime] = []
    previous: datetime | None = None
    moment = current
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        times.append(_real_local_time(fire.astimezone(zone)))
        previous = fire
        # in UTC: wall-clock arithmetic would lose `fold` and step back into a repeated hour
        moment = fire.astimezone(UTC) + _MICROSECOND
    return times
