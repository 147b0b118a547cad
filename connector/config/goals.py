"""The three goal types of a connection: import profiles, export profiles, import groups."""

from __future__ import annotations

import builtins
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connector.config.formats import DateFormat, ExportFormat, ImportFormat

RuleName = Literal["set", "set_if_empty", "add", "sum"]
ValueType = Literal["text", "number", "date", "datetime", "boolean"]
PROFILE_ID = "profile_id"
"""The `match.property` (and `members.property`) that means "the profile id itself"."""

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_GOAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_bucket_name(name: str) -> str:
    """Apply the S3 bucket naming rules so a typo fails at validation, not at 3 a.m."""
    if not 3 <= len(name) <= 63:
        raise ValueError(f"bucket name {name!r} must be 3 to 63 characters long")
    if not _BUCKET_NAME.match(name):
        raise ValueError(
            f"bucket name {name!r} may contain only lower-case letters, digits, dots and hyphens, "
            "and must start and end with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        raise ValueError(f"bucket name {name!r} must not contain '..', '.-' or '-.'")
    if _IP_ADDRESS.match(name):
        raise ValueError(f"bucket name {name!r} must not look like an IP address")
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        raise ValueError(f"bucket name {name!r} uses a prefix or suffix S3 reserves")
    return name


def _check_goal_name(name: str) -> str:
    if not _GOAL_NAME.match(name):
        raise ValueError(
            f"goal name {name!r} may contain letters, digits, '_', '-' and '.', "
            "and must start with a letter or digit"
        )
    return name


BucketName = Annotated[str, AfterValidator(check_bucket_name)]
GoalName = Annotated[str, AfterValidator(_check_goal_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where an import goal finds its files: `files` are wildcards (or `regex:...`)."""

    bucket: BucketName
    prefix: str = ""
    files: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    modified_since: date | datetime | None = None
    """Ignore files last modified before this (a first run on a bucket with years of history)."""
    max_age_days: int | None = Field(default=None, ge=1)
    """Ignore files last modified more than this many days before the run."""

    @model_validator(mode="after")
    def _one_age_limit(self) -> Self:
        if self.modified_since is not None and self.max_age_days is not None:
            raise ValueError("give modified_since or max_age_days, not both")
        return self

    def oldest_allowed(self, now: datetime) -> datetime | None:
        """Files last modified before this are out of the goal's window (None: no window)."""
        if self.max_age_days is not None:
            return now - timedelta(days=self.max_age_days)
        since = self.modified_since
        if since is None:
            return None
        if not isinstance(since, datetime):
            return datetime(since.year, since.month, since.day, tzinfo=UTC)
        return since if since.tzinfo else since.replace(tzinfo=UTC)

    @field_validator("files")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if pattern.startswith("regex:"):
                try:
                    re.compile(pattern.removeprefix("regex:"))
                except re.error as error:
                    raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None
            elif not pattern:
                raise ValueError("a file pattern cannot be empty")
        return patterns


class Mapping(_Strict):
    """One column into one property by one rule; `sum` works on numbers only."""

    column: str
    property: str
    rule: RuleName = "set"
    type: ValueType | None = None
    date_format: DateFormat | None = None
    """Overrides the goal's format.date_format for this column (a file may mix date styles)."""

    @model_validator(mode="after")
    def _sum_needs_numbers(self) -> Self:
        if self.rule == "sum" and self.type not in (None, "number"):
            raise ValueError(f"rule sum adds numbers; column {self.column!r} has type {self.type}")
        return self

    @builtins.property  # plain `property` is the field above, as far as mypy can tell
    def value_type(self) -> ValueType:
        """The declared type, or number for `sum` and text otherwise."""
        if self.type is not None:
            return self.type
        return "number" if self.rule == "sum" else "text"


class ProfileMatch(_Strict):
    """How a row finds its profile: by the profile id or by a unique property."""

    column: str
    property: str = PROFILE_ID
    create_missing: bool = False


class MoveTo(_Strict):
    move_to: str = Field(min_length=1)


AfterImport = Literal["keep", "done_suffix"] | MoveTo


class _ImportGoal(_Strict):
    name: GoalName
    enabled: bool = True
    source: Source
    format: ImportFormat = Field(default_factory=ImportFormat)
    property_prefix: str = ""
    map_all_columns: bool = False
    mappings: list[Mapping] = Field(default_factory=list)
    after_import: AfterImport = "keep"
    """keep the file, rename it to KEY.done, or move it under another prefix once applied."""

    @model_validator(mode="after")
    def _moved_files_leave_the_source(self) -> Self:
        if isinstance(self.after_import, MoveTo):
            target = self.after_import.move_to
            if target.startswith("/") or ".." in target.split("/"):
                raise ValueError(f"after_import.move_to {target!r} must be a plain key prefix")
            if target.startswith(self.source.prefix):
                raise ValueError(
                    f"after_import.move_to {target!r} lies under the source prefix "
                    f"{self.source.prefix!r}: moved files would be listed again"
                )
        return self


class ImportProfilesGoal(_ImportGoal):
    type: Literal["import-profiles"]
    match: ProfileMatch
    delete_column: str | None = None
    """A column whose true value (format.true_values) deletes the matched profile."""

    @model_validator(mode="after")
    def _something_to_import(self) -> Self:
        if not self.mappings and not self.map_all_columns:
            raise ValueError("an import goal needs `mappings` or `map_all_columns: true`")
        return self


class GroupMatch(_Strict):
    column: str


class Members(_Strict):
    """A column of profile identifiers (multi-valued) that belong to the group."""

    column: str
    property: str = PROFILE_ID


class ImportGroupsGoal(_ImportGoal):
    type: Literal["import-groups"]
    group_type: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    match: GroupMatch
    members: Members | None = None


class Destination(_Strict):
    """Where an export lands; `directory` may hold `%SEGMENT_NAME%` and `%SEGMENT_ID%`."""

    bucket: BucketName
    directory: str = ""
    file_name: str = "segment_timestamp"

    @field_validator("directory", "file_name")
    @classmethod
    def _safe_key_part(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError(f"{value!r} must not start with '/'")
        if ".." in value.split("/"):
            raise ValueError(f"{value!r} must not contain '..'")
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise ValueError(f"{value!r} must not contain control characters")
        return value


ColumnValue = Literal["profile_id", "segments", "permission_level", "viewed_interactions", "groups"]


class ExportColumn(_Strict):
    """One output column: exactly one of `value`, `property` or `text`."""

    header: str
    value: ColumnValue | None = None
    property: str | None = None
    text: str | None = None
    segments: list[str] | None = None
    group_type: str | None = None
    type: ValueType = "text"

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [
            name for name in ("value", "property", "text") if getattr(self, name) is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                f"column {self.header!r} needs exactly one of value, property or text; "
                f"given: {', '.join(sources) or 'none'}"
            )
        if self.segments is not None and self.value != "segments":
            raise ValueError(f"column {self.header!r}: `segments` goes with `value: segments`")
        if (self.value == "groups") != (self.group_type is not None):
            raise ValueError(f"column {self.header!r}: `value: groups` needs `group_type`")
        return self


class Encryption(_Strict):
    public_key_file: str


class ExportProfilesGoal(_Strict):
    type: Literal["export-profiles"]
    name: GoalName
    enabled: bool = True
    segment: str = "all"
    destination: Destination
    mode: Literal["full", "incremental"] = "full"
    format: ExportFormat = Field(default_factory=ExportFormat)
    compression: Literal["none", "gzip"] = "none"
    manifest: bool = False
    encryption: Encryption | None = None
    columns: list[ExportColumn] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_headers(self) -> Self:
        headers = [column.header for column in self.columns]
        duplicates = sorted({header for header in headers if headers.count(header) > 1})
        if duplicates:
            again = next(i for i, header in enumerate(headers) if header in headers[:i])
            raise PydanticCustomError(
                "duplicate_header",
                "duplicate column headers: {headers}",
                {"headers": ", ".join(duplicates), "at": ("columns", again, "header")},
            )
        return self


Goal = Annotated[
    ImportProfilesGoal | ExportProfilesGoal | ImportGroupsGoal, Field(discriminator="type")
]
