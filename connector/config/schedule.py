"""When a connection runs: exactly one schedule form, at a time of day, in a time zone."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from connector.config.formats import TimeZoneName

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
EVERY_HOURS_CHOICES = (3, 6, 8, 12, 24)
SCHEDULE_FORMS = (
    "every_minutes",
    "every_hours",
    "times_per_day",
    "days_of_week",
    "days_of_month",
    "weekday_of_month",
)
_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DIVISORS_OF_A_DAY = [n for n in range(1, 1441) if 1440 % n == 0]
# the validators below give the messages; these only tell the JSON Schema (config/schema.py)
_DayOfMonth = Annotated[int, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 31})]


class WeekdayOfMonth(BaseModel):
    """The n-th (1-5) or last given weekday of every month."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ordinal: Literal[1, 2, 3, 4, 5, "last"] = Field(description="1 to 5, or last.")
    weekday: Weekday = Field(description="mon, tue, wed, thu, fri, sat or sun.")


class Schedule(BaseModel):
    """One schedule form; `at` anchors the daily forms and the start of hourly ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = Field(
        default="UTC", description="An IANA time zone (Europe/Amsterdam) for `at` and the days."
    )
    every_minutes: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description="Every N minutes of elapsed time, counted from `at` (one schedule form).",
    )
    every_hours: (
        Annotated[int, WithJsonSchema({"type": "integer", "enum": list(EVERY_HOURS_CHOICES)})]
        | None
    ) = Field(
        default=None,
        description="Every N hours (3, 6, 8, 12 or 24) of wall-clock time from `at` "
        "(one schedule form).",
    )
    times_per_day: (
        Annotated[int, WithJsonSchema({"type": "integer", "enum": _DIVISORS_OF_A_DAY})] | None
    ) = Field(
        default=None,
        description="N times a day, evenly spread from `at`; N divides 1440 (one schedule form).",
    )
    days_of_week: list[Weekday] | None = Field(
        default=None, min_length=1, description="Those days at `at` (one schedule form)."
    )
    days_of_month: list[_DayOfMonth] | None = Field(
        default=None,
        min_length=1,
        description="Those days (1-31) at `at`; a day a month lacks is skipped (one schedule form).",
    )
    weekday_of_month: WeekdayOfMonth | None = Field(
        default=None,
        description="The n-th or last weekday of every month at `at` (one schedule form).",
    )
    at: Annotated[str, WithJsonSchema({"type": "string", "pattern": _TIME_OF_DAY.pattern})] = Field(
        default="00:00",
        description='A quoted time of day, "HH:MM" (default 00:00): the anchor of every form.',
    )
    spread_minutes: int | None = Field(
        default=None,
        ge=0,
        le=1440,
        description="Fire each time later by a fixed amount in [0, N) minutes derived from the "
        "connection's id, so many connections on one schedule do not all fire in the same "
        "second. Default: the daemon's `schedule_spread_minutes` (0: no spread).",
    )

    @field_validator("every_hours")
    @classmethod
    def _every_hours_choice(cls, value: int | None) -> int | None:
        if value is not None and value not in EVERY_HOURS_CHOICES:
            choices = ", ".join(map(str, EVERY_HOURS_CHOICES))
            raise ValueError(f"every_hours must be one of {choices}, got {value}")
        return value

    @field_validator("days_of_month")
    @classmethod
    def _days_in_month(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            wrong = [day for day in value if not 1 <= day <= 31]
            if wrong:
                raise ValueError(f"days_of_month must be between 1 and 31, got {wrong}")
        return value

    @field_validator("times_per_day")
    @classmethod
    def _evenly_spread(cls, value: int | None) -> int | None:
        if value is not None and 1440 % value:
            raise ValueError(
                f"times_per_day must divide the day into whole minutes (1440 / {value} does not)"
            )
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _quoted_time(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 16:30 as the base-60 number 990.
            # (ValueError, not TypeError: pydantic reports only the former with its location.)
            raise ValueError(  # noqa: TRY004
                '`at` must be a quoted time of day like "06:30" '
                "(unquoted, YAML reads it as a number)"
            )
        return value

    @field_validator("at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        match = _TIME_OF_DAY.match(str(value))
        if not match:
            raise ValueError(f"`at` must be a time of day as HH:MM, got {value!r}")
        return f"{int(match[1]):02d}:{match[2]}"

    @model_validator(mode="after")
    def _exactly_one_form(self) -> Self:
        given = [form for form in SCHEDULE_FORMS if getattr(self, form) is not None]
        if len(given) != 1:
            listed = ", ".join(given) if given else "none"
            raise ValueError(
                f"a schedule needs exactly one of {', '.join(SCHEDULE_FORMS)}; given: {listed}"
            )
        return self

    @property
    def form(self) -> str:
        """The name of the schedule form in use."""
        return next(form for form in SCHEDULE_FORMS if getattr(self, form) is not None)

    @property
    def hour(self) -> int:
        return int(self.at.split(":")[0])

    @property
    def minute(self) -> int:
        return int(self.at.split(":")[1])
