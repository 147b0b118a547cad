"""Fire times of every schedule form, exactly, including both DST changes of 2026.

Expected values are worked out by hand from the calendar (2026-01-01 is a
Thursday; Europe/Amsterdam moves to summer time on 2026-03-29 at 02:00 and back
on 2026-10-25 at 03:00). They are compared as ISO strings: the offset is part
of the promise, and aware datetimes in one zone compare equal across `fold`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connector.config.schedule import Schedule
from connector.service.scheduling import build_trigger, next_fire_times

AMS = ZoneInfo("Europe/Amsterdam")
# a Wednesday in winter, far from any DST change
WEDNESDAY = datetime(2026, 1, 14, 11, 45, tzinfo=AMS)


def fire_times(count: int = 3, now: datetime = WEDNESDAY, **form: Any) -> list[str]:
    schedule = Schedule(timezone="Europe/Amsterdam", **form)
    return [moment.isoformat() for moment in next_fire_times(schedule, count, now=now)]


# -- every_minutes: an interval counted from `at` ------------------------------------


def test_every_minutes_counts_from_at_today() -> None:
    # 06:10 + k * 45 min: ... 11:25, 12:10, 12:55, 13:40
    assert fire_times(every_minutes=45, at="06:10") == [
        "2026-01-14T12:10:00+01:00",
        "2026-01-14T12:55:00+01:00",
        "2026-01-14T13:40:00+01:00",
    ]


def test_every_minutes_counts_from_yesterdays_at_when_todays_is_still_ahead() -> None:
    # 18:00 yesterday + k * 90 min: ... 10:30, 12:00, 13:30
    assert fire_times(every_minutes=90, at="18:00") == [
        "2026-01-14T12:00:00+01:00",
        "2026-01-14T13:30:00+01:00",
        "2026-01-14T15:00:00+01:00",
    ]


def test_every_minutes_from_midnight_by_default() -> None:
    assert fire_times(every_minutes=30) == [
        "2026-01-14T12:00:00+01:00",
        "2026-01-14T12:30:00+01:00",
        "2026-01-14T13:00:00+01:00",
    ]


# -- every_hours: the times of day from `at` -------------------------------------------


@pytest.mark.parametrize(
    ("hours", "at", "expected"),
    [
        (
            3,
            "02:00",
            [
                "2026-01-14T14:00",
                "2026-01-14T17:00",
                "2026-01-14T20:00",
                "2026-01-14T23:00",
                "2026-01-15T02:00",
            ],
        ),
        (
            6,
            "06:30",
            [
                "2026-01-14T12:30",
                "2026-01-14T18:30",
                "2026-01-15T00:30",
                "2026-01-15T06:30",
                "2026-01-15T12:30",
            ],
        ),
        (
            8,
            "01:00",
            [
                "2026-01-14T17:00",
                "2026-01-15T01:00",
                "2026-01-15T09:00",
                "2026-01-15T17:00",
                "2026-01-16T01:00",
            ],
        ),
        (
            12,
            "00:00",
            [
                "2026-01-14T12:00",
                "2026-01-15T00:00",
                "2026-01-15T12:00",
                "2026-01-16T00:00",
                "2026-01-16T12:00",
            ],
        ),
        (
            24,
            "02:30",
            [
                "2026-01-15T02:30",
                "2026-01-16T02:30",
                "2026-01-17T02:30",
                "2026-01-18T02:30",
                "2026-01-19T02:30",
            ],
        ),
    ],
)
def test_every_hours_fires_at_the_times_of_day_from_at(
    hours: int, at: str, expected: list[str]
) -> None:
    assert fire_times(5, every_hours=hours, at=at) == [f"{local}:00+01:00" for local in expected]


# -- times_per_day: spread evenly from `at` --------------------------------------------


def test_four_times_a_day_from_0630() -> None:
    early = datetime(2026, 1, 14, 6, 0, tzinfo=AMS)
    assert fire_times(5, now=early, times_per_day=4, at="06:30") == [
        "2026-01-14T06:30:00+01:00",
        "2026-01-14T12:30:00+01:00",
        "2026-01-14T18:30:00+01:00",
        "2026-01-15T00:30:00+01:00",
        "2026-01-15T06:30:00+01:00",
    ]


def test_times_per_day_with_steps_that_change_the_minute() -> None:
    # 1440 / 5 = 288 minutes = 4 h 48 min: 00:10, 04:58, 09:46, 14:34, 19:22
    assert fire_times(5, times_per_day=5, at="00:10") == [
        "2026-01-14T14:34:00+01:00",
        "2026-01-14T19:22:00+01:00",
        "2026-01-15T00:10:00+01:00",
        "2026-01-15T04:58:00+01:00",
        "2026-01-15T09:46:00+01:00",
    ]


# -- days of the week and of the month -------------------------------------------------


def test_days_of_week_at_a_time() -> None:
    # from Wednesday the 14th: Thursday 15, Monday 19, Thursday 22, Monday 26
    assert fire_times(4, days_of_week=["mon", "thu"], at="08:15") == [
        "2026-01-15T08:15:00+01:00",
        "2026-01-19T08:15:00+01:00",
        "2026-01-22T08:15:00+01:00",
        "2026-01-26T08:15:00+01:00",
    ]


def test_days_of_month_skip_a_day_the_month_lacks() -> None:
    # no 31st in February, April, June, September, November; summer time from March 29
    assert fire_times(7, days_of_month=[31], at="09:00") == [
        "2026-01-31T09:00:00+01:00",
        "2026-03-31T09:00:00+02:00",
        "2026-05-31T09:00:00+02:00",
        "2026-07-31T09:00:00+02:00",
        "2026-08-31T09:00:00+02:00",
        "2026-10-31T09:00:00+01:00",
        "2026-12-31T09:00:00+01:00",
    ]


def test_several_days_of_month_in_order() -> None:
    assert fire_times(6, days_of_month=[15, 1, 31], at="09:00") == [
        "2026-01-15T09:00:00+01:00",
        "2026-01-31T09:00:00+01:00",
        "2026-02-01T09:00:00+01:00",
        "2026-02-15T09:00:00+01:00",
        "2026-03-01T09:00:00+01:00",
        "2026-03-15T09:00:00+01:00",
    ]


def test_second_tuesday_of_the_month() -> None:
    # January's (the 13th) has passed; Feb 1 and Mar 1 are Sundays, Apr 1 a Wednesday
    assert fire_times(3, weekday_of_month={"ordinal": 2, "weekday": "tue"}, at="10:00") == [
        "2026-02-10T10:00:00+01:00",
        "2026-03-10T10:00:00+01:00",
        "2026-04-14T10:00:00+02:00",
    ]


def test_last_friday_of_the_month() -> None:
    assert fire_times(4, weekday_of_month={"ordinal": "last", "weekday": "fri"}, at="17:00") == [
        "2026-01-30T17:00:00+01:00",
        "2026-02-27T17:00:00+01:00",
        "2026-03-27T17:00:00+01:00",
        "2026-04-24T17:00:00+02:00",
    ]


def test_fifth_monday_only_in_months_that_have_one() -> None:
    assert fire_times(3, weekday_of_month={"ordinal": 5, "weekday": "mon"}, at="10:00") == [
        "2026-03-30T10:00:00+02:00",
        "2026-06-29T10:00:00+02:00",
        "2026-08-31T10:00:00+02:00",
    ]


# -- DST: spring forward, 2026-03-29 02:00 -> 03:00 ----------------------------------------


def utc_gaps(times: list[str]) -> list[timedelta]:
    moments = [datetime.fromisoformat(text).astimezone(UTC) for text in times]
    return [later - earlier for earlier, later in pairwise(moments)]


def test_cron_forms_keep_wall_clock_times_into_summer_time() -> None:
    evening = datetime(2026, 3, 28, 20, 0, tzinfo=AMS)
    times = fire_times(4, now=evening, every_hours=6, at="00:00")
    assert times == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-29T06:00:00+02:00",
        "2026-03-29T12:00:00+02:00",
        "2026-03-29T18:00:00+02:00",
    ]
    assert utc_gaps(times) == [timedelta(hours=5), timedelta(hours=6), timedelta(hours=6)]


def test_weekly_time_stays_at_0900_across_the_change() -> None:
    saturday = datetime(2026, 3, 21, 12, 0, tzinfo=AMS)
    assert fire_times(3, now=saturday, days_of_week=["sun"], at="09:00") == [
        "2026-03-22T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-04-05T09:00:00+02:00",
    ]


def test_a_time_the_clock_skips_fires_right_after_the_change_once() -> None:
    times = fire_times(3, now=datetime(2026, 3, 27, 12, 0, tzinfo=AMS), every_hours=24, at="02:30")
    assert times == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",  # 02:30 does not exist that night
        "2026-03-30T02:30:00+02:00",
    ]


def test_every_minutes_keeps_real_elapsed_time_into_summer_time() -> None:
    times = fire_times(
        4, now=datetime(2026, 3, 29, 0, 30, tzinfo=AMS), every_minutes=60, at="00:00"
    )
    assert times == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
        "2026-03-29T05:00:00+02:00",
    ]
    assert set(utc_gaps(times)) == {timedelta(hours=1)}


# -- DST: fall back, 2026-10-25 03:00 -> 02:00 ------------------------------------------------


def test_cron_forms_keep_wall_clock_times_into_winter_time() -> None:
    evening = datetime(2026, 10, 24, 20, 0, tzinfo=AMS)
    times = fire_times(3, now=evening, every_hours=6, at="00:00")
    assert times == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T06:00:00+01:00",
        "2026-10-25T12:00:00+01:00",
    ]
    assert utc_gaps(times) == [timedelta(hours=7), timedelta(hours=6)]


def test_monthly_day_moves_offset_not_wall_clock() -> None:
    september = datetime(2026, 9, 1, tzinfo=AMS)
    assert fire_times(3, now=september, days_of_month=[25], at="12:00") == [
        "2026-09-25T12:00:00+02:00",
        "2026-10-25T12:00:00+01:00",
        "2026-11-25T12:00:00+01:00",
    ]


@pytest.mark.parametrize(
    "form",
    [{"every_hours": 24}, {"days_of_week": ["sun"]}, {"days_of_month": [25]}],
    ids=["every_hours", "days_of_week", "days_of_month"],
)
def test_a_time_the_clock_shows_twice_fires_once(form: dict[str, Any]) -> None:
    saturday = datetime(2026, 10, 24, 12, 0, tzinfo=AMS)
    times = fire_times(2, now=saturday, at="02:30", **form)
    assert times[0] == "2026-10-25T02:30:00+02:00"
    assert not times[1].startswith("2026-10-25"), times


def test_half_hourly_wall_clock_does_not_repeat_the_repeated_hour() -> None:
    night = datetime(2026, 10, 25, 1, 45, tzinfo=AMS)
    assert fire_times(4, now=night, times_per_day=48) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]


def test_every_minutes_keeps_real_elapsed_time_into_winter_time() -> None:
    night = datetime(2026, 10, 25, 1, 30, tzinfo=AMS)
    times = fire_times(4, now=night, every_minutes=60, at="00:00")
    assert times == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the same wall-clock hour again, one real hour later
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]
    assert set(utc_gaps(times)) == {timedelta(hours=1)}


# -- the trigger the daemon's scheduler uses ----------------------------------------------


def test_the_scheduler_trigger_agrees_with_the_listed_times_across_fall_back() -> None:
    """What APScheduler itself asks (previous fire, now in UTC) gives the same sequence."""
    schedule = Schedule(timezone="Europe/Amsterdam", days_of_week=["sun"], at="02:30")
    trigger = build_trigger(schedule)
    now = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, now)
    # the scheduler asks again right after the fire, with "now" just past it
    second = trigger.get_next_fire_time(first, first.astimezone(UTC) + timedelta(seconds=1))
    assert first.isoformat() == "2026-10-25T02:30:00+02:00"
    assert second.isoformat() == "2026-11-01T02:30:00+01:00"


def test_next_fire_times_are_in_the_schedules_zone() -> None:
    schedule = Schedule(timezone="America/New_York", days_of_week=["mon"], at="06:30")
    times = next_fire_times(schedule, 2, now=datetime(2026, 1, 14, 12, 0, tzinfo=UTC))
    assert [t.isoformat() for t in times] == [
        "2026-01-19T06:30:00-05:00",
        "2026-01-26T06:30:00-05:00",
    ]
