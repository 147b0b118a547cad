"""Schedules: exactly one form, allowed values only, `at` as HH:MM, a real time zone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from connector.config import Schedule

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

ONE_OF = (
    "a schedule needs exactly one of every_minutes, every_hours, times_per_day, days_of_week, "
    "days_of_month, weekday_of_month; given: "
)
GOAL = """\
goals:
  - type: import-profiles
    name: nightly
    source: {bucket: crm-exports}
    match: {column: customer_id}
    map_all_columns: true
"""


def with_schedule(*schedule_lines: str) -> str:
    """`schedule:` on line 1, the given lines from line 2 on."""
    return "schedule:\n" + "".join(f"  {line}\n" for line in schedule_lines) + GOAL


def loaded_schedule(goals: GoalsFolder, *schedule_lines: str) -> Schedule:
    goals.write("crm.yaml", with_schedule(*schedule_lines))
    schedule = goals.load().connection("crm").schedule
    assert schedule is not None
    return schedule


@pytest.mark.parametrize(
    ("schedule_lines", "line", "message"),
    [
        (
            ["timezone: Europe/Amsterdam", "every_minutes: 30", "every_hours: 3"],
            1,
            f"schedule: {ONE_OF}every_minutes, every_hours",
        ),
        (
            ["days_of_week: [mon]", "days_of_month: [1]"],
            1,
            f"schedule: {ONE_OF}days_of_week, days_of_month",
        ),
        (["timezone: UTC", 'at: "06:30"'], 1, f"schedule: {ONE_OF}none"),
        (
            ["every_hours: 5"],
            2,
            "schedule.every_hours: every_hours must be one of 3, 6, 8, 12, 24, got 5",
        ),
        (
            ["times_per_day: 7"],
            2,
            "schedule.times_per_day: times_per_day must divide the day into whole minutes "
            "(1440 / 7 does not)",
        ),
        (
            ["days_of_month: [1, 15, 32]"],
            2,
            "schedule.days_of_month: days_of_month must be between 1 and 31, got [32]",
        ),
        (
            ["days_of_month: [0]"],
            2,
            "schedule.days_of_month: days_of_month must be between 1 and 31, got [0]",
        ),
        (
            ["days_of_week: [mon, thursday]"],
            2,
            "schedule.days_of_week[1]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', "
            "'sat' or 'sun'",
        ),
        (
            ["weekday_of_month:", "  ordinal: 6", "  weekday: tue"],
            3,
            "schedule.weekday_of_month.ordinal: Input should be 1, 2, 3, 4, 5 or 'last'",
        ),
        (
            ["every_minutes: 0"],
            2,
            "schedule.every_minutes: Input should be greater than or equal to 1",
        ),
        (
            ["every_minutes: 30", 'at: "25:00"'],
            3,
            "schedule.at: `at` must be a time of day as HH:MM, got '25:00'",
        ),
        (
            ["every_minutes: 30", 'at: "6.30"'],
            3,
            "schedule.at: `at` must be a time of day as HH:MM, got '6.30'",
        ),
        (
            ["every_minutes: 30", "at: 16:30"],
            3,
            'schedule.at: `at` must be a quoted time of day like "06:30" '
            "(unquoted, YAML reads it as a number)",
        ),
        (
            ["timezone: Amsterdam", "every_minutes: 30"],
            2,
            "schedule.timezone: unknown time zone 'Amsterdam' "
            "(use an IANA name like Europe/Amsterdam)",
        ),
    ],
    ids=[
        "two forms",
        "two day forms",
        "no form",
        "every_hours 5",
        "times_per_day 7",
        "day 32",
        "day 0",
        "bad weekday",
        "ordinal 6",
        "every_minutes 0",
        "at 25:00",
        "at 6.30",
        "at unquoted",
        "timezone",
    ],
)
def test_bad_schedule_is_reported_with_its_line(
    goals: GoalsFolder, schedule_lines: list[str], line: int, message: str
) -> None:
    path = goals.write("crm.yaml", with_schedule(*schedule_lines))
    goals.expect(path, line, message)


@pytest.mark.parametrize("hours", [3, 6, 8, 12, 24])
def test_every_hours_accepts_the_listed_choices(goals: GoalsFolder, hours: int) -> None:
    schedule = loaded_schedule(goals, f"every_hours: {hours}")
    assert (schedule.form, schedule.every_hours) == ("every_hours", hours)


@pytest.mark.parametrize(
    ("schedule_lines", "form"),
    [
        (["every_minutes: 30"], "every_minutes"),
        (["times_per_day: 4", 'at: "06:00"'], "times_per_day"),
        (["days_of_week: [mon, thu]"], "days_of_week"),
        (["days_of_month: [1, 15, 31]"], "days_of_month"),
        (["weekday_of_month: {ordinal: 2, weekday: tue}"], "weekday_of_month"),
        (["weekday_of_month: {ordinal: last, weekday: fri}"], "weekday_of_month"),
    ],
    ids=[
        "every_minutes",
        "times_per_day",
        "days_of_week",
        "days_of_month",
        "2nd tuesday",
        "last friday",
    ],
)
def test_each_schedule_form_is_accepted_alone(
    goals: GoalsFolder, schedule_lines: list[str], form: str
) -> None:
    assert loaded_schedule(goals, *schedule_lines).form == form


def test_last_weekday_of_the_month_is_accepted(goals: GoalsFolder) -> None:
    schedule = loaded_schedule(goals, "weekday_of_month: {ordinal: last, weekday: fri}")
    assert schedule.weekday_of_month is not None
    assert (schedule.weekday_of_month.ordinal, schedule.weekday_of_month.weekday) == (
        "last",
        "fri",
    )


def test_at_is_normalised_to_hh_mm_in_the_given_time_zone(goals: GoalsFolder) -> None:
    schedule = loaded_schedule(goals, "timezone: Europe/Amsterdam", "every_hours: 6", 'at: "6:05"')
    assert (schedule.at, schedule.hour, schedule.minute) == ("06:05", 6, 5)
    assert schedule.timezone == "Europe/Amsterdam"


def test_absent_schedule_means_on_demand_only(goals: GoalsFolder) -> None:
    goals.write("crm.yaml", GOAL)
    assert goals.load().connection("crm").schedule is None
