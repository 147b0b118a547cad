"""A connection's `schedule` as an APScheduler 3 trigger, and its next fire times.

Forms and how they keep time:
- every_minutes: an interval from `at` — real elapsed time, so a DST change
  neither doubles nor skips a run.
- every_hours, times_per_day: the wall-clock times of day from `at`
  (cron), so "every 6 hours from 06:00" stays 00/06/12/18 local time.
- days_of_week, days_of_month, weekday_of_month: wall clock at `at`; a day
  of the month a month lacks (31 in April) is skipped that month.
The n-th weekday is `day="2nd tue"` / `day="last fri"`: APScheduler reads
`day_of_week="fri#2"` as every Friday (see PITFALLS.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.config.schedule import Schedule

_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", "last": "last"}


def build_trigger(schedule: Schedule, *, now: datetime | None = None) -> BaseTrigger:
    """The trigger for one schedule, in the schedule's time zone."""
    zone = ZoneInfo(schedule.timezone)
    hour, minute = schedule.hour, schedule.minute
    if schedule.every_minutes is not None:
        current = (now or datetime.now(zone)).astimezone(zone)
        anchor = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if anchor > current:
            anchor -= timedelta(days=1)
        return IntervalTrigger(minutes=schedule.every_minutes, start_date=anchor, timezone=zone)
    if schedule.every_hours is not None:
        return _times_of_day(hour * 60 + minute, schedule.every_hours * 60, zone)
    if schedule.times_per_day is not None:
        return _times_of_day(hour * 60 + minute, 1440 // schedule.times_per_day, zone)
    if schedule.days_of_week is not None:
        days = ",".join(schedule.days_of_week)
        return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=zone)
    if schedule.days_of_month is not None:
        days = ",".join(str(day) for day in sorted(set(schedule.days_of_month)))
        return CronTrigger(day=days, hour=hour, minute=minute, timezone=zone)
    if schedule.weekday_of_month is not None:
        which = schedule.weekday_of_month
        day = f"{_ORDINALS[which.ordinal]} {which.weekday}"
        return CronTrigger(day=day, hour=hour, minute=minute, timezone=zone)
    raise ValueError(f"schedule has no form: {schedule!r}")


def _times_of_day(first_minute: int, step: int, zone: ZoneInfo) -> BaseTrigger:
    """Fire at `first_minute` after midnight and every `step` minutes around the clock."""
    by_minute: dict[int, list[int]] = {}
    for offset in range(0, 1440, step):
        total = (first_minute + offset) % 1440
        by_minute.setdefault(total % 60, []).append(total // 60)
    triggers = [
        CronTrigger(hour=",".join(map(str, sorted(hours))), minute=minute, timezone=zone)
        for minute, hours in sorted(by_minute.items())
    ]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


def next_fire_times(
    schedule: Schedule, count: int = 5, *, now: datetime | None = None
) -> list[datetime]:
    """The next `count` fire times, in the schedule's time zone."""
    zone = ZoneInfo(schedule.timezone)
    current = (now or datetime.now(zone)).astimezone(zone)
    trigger = build_trigger(schedule, now=current)
    times: list[datetime] = []
    previous: datetime | None = None
    moment = current
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        fire = fire.astimezone(zone)
        times.append(fire)
        previous = fire
        moment = fire + timedelta(microseconds=1)
    return times
