"""The three goal types of a connection: import profiles, export profiles, import groups."""

from __future__ import annotations

import builtins
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Self

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

from connector.config.formats import DateFormat, ExportFormat, ImportFormat

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
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


class Mapping(_Strict):
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


class ProfileMatch(_Strict):
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


class MoveTo(_Strict):
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


class _ImportGoal(_Strict):
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


class ImportProfilesGoal(_ImportGoal):
    """Rows of delimited files from S3 into profiles, by mapping rules."""

    type: Literal["import-profiles"] = Field(description="The goal type.")
    match: ProfileMatch = Field(description="How a row finds its profile.")
    delete_column: str | None = Field(
        default=None,
        description="A column whose true value (format.true_values) deletes the matched profile.",
    )
    on_change: Literal["reapply", "replace"] = Field(
        default="reapply",
        description="A changed file (new content, or a changed goal configuration) is applied "
        "again: `reapply` on top of what its earlier version did (sums add again); `replace` "
        "takes the earlier version's sums and added values back first, so each file counts once.",
    )

    @model_validator(mode="after")
    def _something_to_import(self) -> Self:
        if not self.mappings and not self.map_all_columns:
            raise ValueError("an import goal needs `mappings` or `map_all_columns: true`")
        return self


class GroupMatch(_Strict):
    """How a row finds its group."""

    column: str = Field(
        description="The column holding the group id; an empty one rejects the row."
    )


class Members(_Strict):
    """A column of profile identifiers (multi-valued) that belong to the group."""

    column: str = Field(
        description="The column of member identifiers, split on the multi-value separator."
    )
    property: str = Field(
        default=PROFILE_ID,
        description="The property the identifiers are values of (default profile_id).",
    )


class ImportGroupsGoal(_ImportGoal):
    """Rows of delimited files from S3 into groups of one type, with their members."""

    type: Literal["import-groups"] = Field(description="The goal type.")
    group_type: str = Field(
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="The type of the groups: lower-case letters, digits, _ and -.",
    )
    match: GroupMatch = Field(description="How a row finds its group.")
    members: Members | None = Field(
        default=None, description="The column of the group's member profiles (optional)."
    )
    members_mode: Literal["add", "replace"] = Field(
        default="add",
        description="`add`: a row's members join its group. `replace`: a group's members are "
        "exactly those of its latest row; the others leave, and an empty member list removes "
        "the group.",
    )

    @model_validator(mode="after")
    def _replace_needs_members(self) -> Self:
        if self.members_mode == "replace" and self.members is None:
            raise ValueError("members_mode: replace needs `members` (the column of members)")
        return self


SEGMENT_TIMESTAMP: Final = "segment_timestamp"
"""The `file_name` that names each run's file after the segment and the UTC second."""
SEGMENT_NAME_MACRO: Final = "%SEGMENT_NAME%"
SEGMENT_ID_MACRO: Final = "%SEGMENT_ID%"
DESTINATION_MACRO: Final = "%DESTINATION%"
DATETIME_MACRO: Final = "%DATETIME%"
TIMESTAMP_MACRO: Final = "%TIMESTAMP%"
CUSTOM_TEXT_MACRO: Final = "%CUSTOM_TEXT%"
SEGMENT_MACROS: Final = (SEGMENT_NAME_MACRO, SEGMENT_ID_MACRO)
"""The macros of `directory` and of a fixed `file_name` (the original, BlueConic-style set)."""
FILE_NAME_MACROS: Final = (
    SEGMENT_NAME_MACRO,
    SEGMENT_ID_MACRO,
    DESTINATION_MACRO,
    DATETIME_MACRO,
    TIMESTAMP_MACRO,
    CUSTOM_TEXT_MACRO,
)
"""The tokens of `file_name: {pattern: ...}` (the Adobe-style set)."""
MAX_KEY_BYTES: Final = 1024
"""S3's limit on an object key, in UTF-8 bytes."""
MAX_NAME_BYTES: Final = 255
"""The file-name limit of the file systems partners sync exports to (ext4, NTFS, APFS)."""
MANIFEST_SUFFIX: Final = ".manifest.json"
PART_SUFFIX_BYTES: Final = len("_part0001")

_TOKEN = re.compile(r"%[^%/\s]*%")
_CUSTOM_TEXT = re.compile(r"[A-Za-z0-9!_.*'()-]+")
_SHORTEST: Final = {DATETIME_MACRO: "0" * len("YYYYMMDD_HHMMSS"), TIMESTAMP_MACRO: "0" * 10}
_MACRO_HELP = (
    "%SEGMENT_NAME%, %SEGMENT_ID%, %DESTINATION% (the goal name), "
    "%DATETIME% (YYYYMMDD_HHMMSS, UTC), %TIMESTAMP% (Unix seconds) or %CUSTOM_TEXT%"
)


def _check_key_part(value: str) -> str:
    if value.startswith("/"):
        raise ValueError(f"{value!r} must not start with '/'")
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} must not contain '..'")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError(f"{value!r} must not contain control characters")
    return value


class FileNamePattern(_Strict):
    """`file_name: {pattern: ..., custom_text: ...}`: a name built from tokens at each run.

    A pattern with %DATETIME% or %TIMESTAMP% names a new file each run (like
    `segment_timestamp`); without them it is a fixed name replaced each run.
    Every `%` must belong to a known token, so a strftime code such as `%Y`
    is refused here instead of landing literally in a partner's file name.
    """

    pattern: str = Field(
        min_length=1,
        description="The file name with tokens: %SEGMENT_NAME%, %SEGMENT_ID%, %DESTINATION% "
        "(the goal name), %DATETIME% (YYYYMMDD_HHMMSS, UTC), %TIMESTAMP% (Unix seconds), "
        "%CUSTOM_TEXT%.",
    )
    custom_text: str | None = Field(
        default=None,
        description="The text of %CUSTOM_TEXT%: letters, digits and ! _ . * ' ( ) -.",
    )

    @field_validator("pattern")
    @classmethod
    def _known_tokens(cls, value: str) -> str:
        _check_key_part(value)
        if value.endswith("/"):
            raise ValueError(f"{value!r} must end with a file name, not '/'")
        for match in _TOKEN.finditer(value):
            if match.group() not in FILE_NAME_MACROS:
                raise ValueError(f"unknown token {match.group()!r}; use {_MACRO_HELP}")
        if "%" in _TOKEN.sub("", value):
            raise ValueError(
                f"{value!r} has a '%' outside a token; tokens are written like %DATETIME%, "
                "and a literal '%' is not allowed in a file name pattern"
            )
        return value

    @field_validator("custom_text")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        if value is not None and (not _CUSTOM_TEXT.fullmatch(value) or not value.strip(".")):
            raise ValueError(
                f"custom_text {value!r} may contain only letters, digits and ! _ . * ' ( ) -, "
                "and not only dots"
            )
        return value

    @model_validator(mode="after")
    def _custom_text_used(self) -> Self:
        uses = CUSTOM_TEXT_MACRO in self.pattern
        if uses and self.custom_text is None:
            raise PydanticCustomError(
                "custom_text_missing",
                "the pattern uses %CUSTOM_TEXT%: set `custom_text` beside it",
                {"at": ("pattern",)},
            )
        if not uses and self.custom_text is not None:
            raise PydanticCustomError(
                "custom_text_unused",
                "custom_text is set but the pattern has no %CUSTOM_TEXT%",
                {"at": ("custom_text",)},
            )
        return self

    @property
    def time_based(self) -> bool:
        return DATETIME_MACRO in self.pattern or TIMESTAMP_MACRO in self.pattern


def _file_name_form(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate the one form given, so an error speaks of that form only (not one per form)."""
    if isinstance(value, dict):
        return FileNamePattern.model_validate(value)
    if isinstance(value, str | FileNamePattern):
        return handler(value)
    raise ValueError(
        "file_name is segment_timestamp, a fixed name, or {pattern: ..., custom_text: ...}"
    )


FileName = Annotated[str | FileNamePattern, WrapValidator(_file_name_form)]


class Destination(_Strict):
    """Where an export lands.

    `directory` and a fixed `file_name` may hold %SEGMENT_NAME% and
    %SEGMENT_ID%; `file_name: {pattern: ...}` may hold every file-name token
    (FILE_NAME_MACROS). `segment_timestamp` (the default) is
    `<segment name>_<YYYYMMDDTHHMMSSZ>.csv`.

    """

    bucket: BucketName = Field(description="The S3 bucket the export is written to.")
    directory: str = Field(
        default="",
        description='The key prefix of the files (default ""); may hold %SEGMENT_NAME% and '
        "%SEGMENT_ID%.",
    )
    file_name: FileName = Field(
        default=SEGMENT_TIMESTAMP,
        description="segment_timestamp (a new <segment name>_<YYYYMMDDTHHMMSSZ>.csv each run), "
        "a fixed name replaced each run, or {pattern: ..., custom_text: ...}.",
    )

    @field_validator("directory")
    @classmethod
    def _safe_directory(cls, value: str) -> str:
        return _check_key_part(value)

    @field_validator("file_name")
    @classmethod
    def _safe_fixed_name(cls, value: str | FileNamePattern) -> str | FileNamePattern:
        if isinstance(value, str):
            _check_key_part(value)
        return value

    @property
    def time_based(self) -> bool:
        """Whether each run's name holds the export's second, so runs never replace each other."""
        if isinstance(self.file_name, FileNamePattern):
            return self.file_name.time_based
        return self.file_name == SEGMENT_TIMESTAMP


ColumnValue = Literal[
    "profile_id", "segments", "permission_level", "viewed_interactions", "groups", "segment_status"
]
SEGMENT_STATUS = "segment_status"
"""The column value that says `realized` (a member) or `exited` (left since the last export)."""
ExitsMode = Literal["rows", "file", "none"]
EXITED_SUFFIX = "_exited"
"""Inserted before the extensions of an `exits: file` export's sibling file."""
HashName = Literal["sha256", "email_lc_sha256", "phone_sha256"]
"""sha256 of the value as is; of the trimmed, lower-cased e-mail; of the phone's `+` and digits."""


class ExportColumn(_Strict):
    """One output column: exactly one of `value`, `property` or `text`.

    `hash` replaces each value by its SHA-256 (hex), for partners that match
    audiences on hashed identifiers and must never receive them in clear.
    """

    header: str = Field(description="The column's header, as written.")
    value: ColumnValue | None = Field(
        default=None,
        description="A computed value: profile_id, segments, permission_level, "
        "viewed_interactions, groups (with group_type) or segment_status (realized, or exited "
        "for a profile that left the segment).",
    )
    property: str | None = Field(default=None, description="The profile property written here.")
    text: str | None = Field(default=None, description="A static text written in every row.")
    segments: list[str] | None = Field(
        default=None,
        description="With `value: segments`: only these segment ids (default: every segment).",
    )
    group_type: str | None = Field(
        default=None, description="With `value: groups`: the type of the groups written."
    )
    type: ValueType = Field(
        default="text",
        description="How values are formatted: text, number (decimal separator), date or "
        "datetime (date_format, timezone), boolean.",
    )
    hash: HashName | None = Field(
        default=None,
        description="Write the SHA-256 (hex) of each value instead: sha256 as is, "
        "email_lc_sha256 trimmed and lower-cased, phone_sha256 of `+` and digits.",
    )

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
        if self.hash is not None and self.property is None and self.value != PROFILE_ID:
            raise PydanticCustomError(
                "hash_needs_identity",
                "column {header}: `hash` works on `property:` and `value: profile_id` columns",
                {"header": repr(self.header), "at": ("hash",)},
            )
        return self


class Encryption(_Strict):
    """OpenPGP encryption of the exported file, with the system gpg."""

    public_key_file: str = Field(
        description="The partner's public key (ASCII-armoured), relative to the goals folder."
    )


def _shortest(template: str, tokens: tuple[str, ...], custom_text: str | None = None) -> str:
    """`template` with each of `tokens` at its shortest: the least a run can make of it."""

    def shortest(match: re.Match[str]) -> str:
        token = match.group()
        if token not in tokens:
            return token
        if token == CUSTOM_TEXT_MACRO:
            return custom_text or ""
        return _SHORTEST.get(token, "x")

    return _TOKEN.sub(shortest, template)


def _key_parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


class ExportProfilesGoal(_Strict):
    """The profiles of a segment, written as a delimited file to S3."""

    type: Literal["export-profiles"] = Field(description="The goal type.")
    name: GoalName = Field(
        description="Unique in the connection; letters, digits, _ - and ., "
        "starting with a letter or digit."
    )
    enabled: bool = Field(default=True, description="A disabled goal is skipped by every run.")
    segment: str = Field(
        default="all", description="A segment id from segments.yaml, or all (every profile)."
    )
    destination: Destination = Field(description="Where the export lands.")
    mode: Literal["full", "incremental"] = Field(
        default="full",
        description="full: every member; incremental: the profiles changed since this goal's "
        "last successful export.",
    )
    format: ExportFormat = Field(
        default_factory=ExportFormat, description="The dialect of the written file."
    )
    compression: Literal["none", "gzip"] = Field(
        default="none", description="gzip appends .gz to the file name."
    )
    manifest: bool = Field(
        default=False,
        description="Write <data key>.manifest.json (keys, sizes, counts, checksums) once "
        "every data file is complete.",
    )
    encryption: Encryption | None = Field(
        default=None, description="Encrypt the file to a partner's OpenPGP public key."
    )
    columns: list[ExportColumn] = Field(
        min_length=1, description="The output columns, in this order."
    )
    max_rows_per_file: int | None = Field(
        default=None,
        ge=1,
        description="Split the export into numbered parts of at most this many rows, "
        "each a whole file.",
    )
    abandoned_upload_hours: float = Field(
        default=24.0,
        gt=0,
        description="Multipart uploads of this connection that a killed export left open are "
        "aborted by a later export once they are older than this (their parts cost storage).",
    )
    dedupe_by: list[str] = Field(
        default_factory=list,
        description="Column headers: one row per distinct combination of their written values; "
        "first wins.",
    )
    required: list[str] = Field(
        default_factory=list,
        description="Column headers that must all have a value (not null, not empty) for a row "
        "to be written.",
    )
    exits: ExitsMode | None = Field(
        default=None,
        description="Incremental exports: profiles that left the segment (or withdrew consent) "
        "since the last export go in the data file (rows), in an _exited sibling file (file) "
        "or nowhere (none). Default: rows with a segment_status column, else none.",
    )

    @property
    def exits_mode(self) -> ExitsMode:
        """`exits` as given; unset, `rows` when a `segment_status` column says which rows are
        exits, else `none` (the behaviour before exits existed). Full exports have no exits."""
        if self.mode != "incremental":
            return "none"
        if self.exits is not None:
            return self.exits
        return "rows" if any(c.value == SEGMENT_STATUS for c in self.columns) else "none"

    @model_validator(mode="after")
    def _exits_fit(self) -> Self:
        if self.exits in ("rows", "file") and self.mode != "incremental":
            raise PydanticCustomError(
                "exits_need_incremental",
                "exits: {exits} needs mode: incremental (a full export has no exits)",
                {"exits": self.exits, "at": ("exits",)},
            )
        if self.exits == "rows" and not any(c.value == SEGMENT_STATUS for c in self.columns):
            raise PydanticCustomError(
                "exits_need_status",
                "exits: rows needs a column with value: segment_status, or a partner cannot "
                "tell an exit from a member",
                {"at": ("exits",)},
            )
        return self

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

    @model_validator(mode="after")
    def _known_row_headers(self) -> Self:
        headers = [column.header for column in self.columns]
        for key in ("dedupe_by", "required"):
            chosen: list[str] = getattr(self, key)
            for index, header in enumerate(chosen):
                if header not in headers:
                    raise PydanticCustomError(
                        "unknown_header",
                        "{header} is not a column header (headers: {headers})",
                        {"header": repr(header), "headers": ", ".join(headers), "at": (key, index)},
                    )
                if header in chosen[:index]:
                    raise PydanticCustomError(
                        "repeated_header",
                        "{header} is listed twice",
                        {"header": repr(header), "at": (key, index)},
                    )
        return self

    @model_validator(mode="after")
    def _names_fit(self) -> Self:
        """Refuse names that are too long whatever the segment: the literal text says so already.

        Tokens count at their shortest (a segment name as one character), so
        only a name that can never fit is refused here; the export checks the
        real key at run time.
        """
        file_name = self.destination.file_name
        at: tuple[str, ...] = ("destination", "file_name")
        if isinstance(file_name, FileNamePattern):
            name = _shortest(file_name.pattern, FILE_NAME_MACROS, file_name.custom_text)
            at = (*at, "pattern")
        elif file_name == SEGMENT_TIMESTAMP:
            name = "x_YYYYMMDDTHHMMSSZ.csv"
        else:
            name = _shortest(file_name, SEGMENT_MACROS)
        suffix = max(
            len(MANIFEST_SUFFIX) if self.manifest else 0,
            PART_SUFFIX_BYTES if self.max_rows_per_file is not None else 0,
        ) + (len(EXITED_SUFFIX) if self.exits_mode == "file" else 0)
        name_parts = _key_parts(name)
        shortest_name = len((name_parts[-1] if name_parts else "").encode()) + suffix
        if shortest_name > MAX_NAME_BYTES:
            raise PydanticCustomError(
                "file_name_too_long",
                "the file name is at least {size} bytes with its suffixes; "
                "file names are limited to {limit} bytes",
                {"size": shortest_name, "limit": MAX_NAME_BYTES, "at": at},
            )
        directory = _shortest(self.destination.directory, SEGMENT_MACROS)
        shortest_key = len("/".join(_key_parts(directory) + name_parts).encode()) + suffix
        if shortest_key > MAX_KEY_BYTES:
            raise PydanticCustomError(
                "key_too_long",
                "the object key (directory and file name) is at least {size} bytes; "
                "S3 keys are limited to {limit} bytes",
                {"size": shortest_key, "limit": MAX_KEY_BYTES, "at": ("destination",)},
            )
        return self


Goal = Annotated[
    ImportProfilesGoal | ExportProfilesGoal | ImportGroupsGoal, Field(discriminator="type")
]
