"""What every goal type's model shares: names, sources, mappings, matching, after-import."""

from __future__ import annotations

import builtins
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connector.config.formats import DateFormat, ImportFormat

RuleName = Literal["set", "set_if_empty", "add", "sum"]
ValueType = Literal["text", "number", "date", "datetime", "boolean"]
KeyNormalization = Literal["trim", "lowercase", "email"]
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


# The JSON Schema says what the validators accept as far as a schema can (see config/schema.py).
BucketName = Annotated[
    str,
    AfterValidator(check_bucket_name),
    WithJsonSchema({"type": "string", "pattern": _BUCKET_NAME.pattern}),
]
GoalName = Annotated[
    str,
    AfterValidator(_check_goal_name),
    WithJsonSchema({"type": "string", "pattern": _GOAL_NAME.pattern}),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(StrictModel):
    """Where an import goal finds its files: `files` are wildcards (or `regex:...`)."""

    bucket: BucketName = Field(description="The S3 bucket the files are listed in.")
    prefix: str = Field(
        default="", description='Only keys under this prefix are listed (default "": all).'
    )
    files: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="Wildcards matched against the key below the prefix (`*` and `?` do not "
        "cross `/`, `**` does), or `regex:PATTERN`. Default: every file.",
    )
    modified_since: date | datetime | None = Field(
        default=None,
        description="Ignore files last modified before this date (00:00 UTC) or date-time "
        "(a first run on a bucket with years of history). Not with max_age_days.",
    )
    max_age_days: int | None = Field(
        default=None,
        ge=1,
        description="Ignore files last modified more than this many days before the run. "
        "Not with modified_since.",
    )

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


class Mapping(StrictModel):
    """One column into one property by one rule; `sum` works on numbers only."""

    column: str = Field(description="The column name, as in the file's header (or `columns`).")
    property: str = Field(description="The profile (or group) property the column's values reach.")
    rule: RuleName = Field(
        default="set",
        description="set: overwrite; set_if_empty: write only an empty property; add: append to "
        "a unique list (split on the multi-value separator); sum: add numerically.",
    )
    type: ValueType | None = Field(
        default=None,
        description="How cells are converted: text, number, date, datetime or boolean "
        "(default: number for sum, text otherwise).",
    )
    date_format: DateFormat | None = Field(
        default=None,
        description="Overrides the goal's format.date_format for this column "
        "(a file may mix date styles): iso8601 or a strftime pattern.",
    )

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


class ProfileMatch(StrictModel):
    """How a row finds its profile: by the profile id or by a unique property."""

    column: str = Field(description="The column that identifies the profile.")
    property: str = Field(
        default=PROFILE_ID,
        description="profile_id (the column holds profile ids), or a property that becomes "
        "a unique, indexed identifier.",
    )
    create_missing: bool = Field(
        default=False,
        description="Create a profile for a row that matches none (default false: the row is "
        "skipped and counted).",
    )
    normalize: KeyNormalization = Field(
        default="trim",
        description="How key cells, and the stored values of `property`, are written before "
        "they are compared: `trim` (spaces around), `lowercase` (and trim), `email` "
        "(lowercase, and a cell that is no e-mail address rejects its row).",
    )

    @model_validator(mode="after")
    def _normalize_a_property(self) -> Self:
        if self.property == PROFILE_ID and self.normalize != "trim":
            raise ValueError(
                f"normalize: {self.normalize} needs a match property: profile ids are "
                "matched as they are (trimmed)"
            )
        return self


class MoveTo(StrictModel):
    """Move an imported file under another prefix."""

    move_to: str = Field(
        min_length=1,
        description="The prefix an imported file moves to (with its key below the source "
        "prefix); used literally, so end it with `/`. Not under the source prefix.",
    )


_AFTER_IMPORT_WORDS = ("keep", "done_suffix")


def _after_import_form(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate the one form given, so an error speaks of that form only (not one per form)."""
    if isinstance(value, dict):
        return MoveTo.model_validate(value)
    if isinstance(value, MoveTo) or (isinstance(value, str) and value in _AFTER_IMPORT_WORDS):
        return handler(value)
    raise ValueError("must be keep, done_suffix or {move_to: PREFIX}")


AfterImport = Annotated[Literal["keep", "done_suffix"] | MoveTo, WrapValidator(_after_import_form)]


class ImportGoalBase(StrictModel):
    name: GoalName = Field(
        description="Unique in the connection; letters, digits, _ - and ., "
        "starting with a letter or digit."
    )
    enabled: bool = Field(default=True, description="A disabled goal is skipped by every run.")
    source: Source = Field(description="Where the goal finds its files.")
    format: ImportFormat = Field(
        default_factory=ImportFormat, description="The dialect of the files (every key optional)."
    )
    property_prefix: str = Field(
        default="", description="Prefix of the property names map_all_columns creates."
    )
    map_all_columns: bool = Field(
        default=False,
        description="Every column without a mapping becomes a property of its name, rule set.",
    )
    mappings: list[Mapping] = Field(
        default_factory=list, description="One column into one property by one rule, each."
    )
    after_import: AfterImport = Field(
        default="keep",
        description="Once a file is applied: keep it, rename it to KEY.done (done_suffix), "
        "or move it under another prefix ({move_to: PREFIX}).",
    )

    @model_validator(mode="after")
    def _moved_files_leave_the_source(self) -> Self:
        if not isinstance(self.after_import, MoveTo):
            return self
        target = self.after_import.move_to
        at = ("after_import", "move_to")  # the error's line is move_to's, not the goal's
        if target.startswith("/") or ".." in target.split("/"):
            raise PydanticCustomError(
                "move_to_not_plain",
                "{target} must be a plain key prefix (no leading '/', no '..')",
                {"target": repr(target), "at": at},
            )
        prefix = self.source.prefix
        if target.startswith(prefix):
            where = (
                f"under the source prefix {prefix!r}"
                if prefix
                else "in the listed bucket (source.prefix is empty, so every key is listed)"
            )
            raise PydanticCustomError(
                "move_to_under_source",
                "{target} lies {where}: moved files would be listed again",
                {"target": repr(target), "where": where, "at": at},
            )
        return self
