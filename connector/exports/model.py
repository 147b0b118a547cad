"""The export-profiles goal as written in a connection file."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    Field,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connector.config.formats import ExportFormat
from connector.config.goal_parts import (
    PROFILE_ID,
    BucketName,
    GoalName,
    StrictModel,
    ValueType,
)

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


class FileNamePattern(StrictModel):
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


class Destination(StrictModel):
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


class ExportColumn(StrictModel):
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


class Encryption(StrictModel):
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


class ExportProfilesGoal(StrictModel):
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
