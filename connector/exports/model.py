"""The export-profiles goal as written in a connection file.

Its `destination` (file names, their tokens and limits) is modelled in
`_destination` and re-exported here, so the goal's model is imported from
one place.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from connector.config._unique import require_unique
from connector.config.formats import ExportFormat
from connector.config.goal_parts import PROFILE_ID, GoalName, StrictModel, ValueType
from connector.exports._destination import (
    EXITED_SUFFIX,
    MANIFEST_SUFFIX,
    MAX_KEY_BYTES,
    MAX_NAME_BYTES,
    PART_SUFFIX_BYTES,
    Destination,
    FileNamePattern,
)

__all__ = [
    "SEGMENT_STATUS",
    "ColumnValue",
    "Destination",
    "Encryption",
    "ExitsMode",
    "ExportColumn",
    "ExportProfilesGoal",
    "FileNamePattern",
    "HashName",
]

ColumnValue = Literal[
    "profile_id", "segments", "permission_level", "viewed_interactions", "groups", "segment_status"
]
SEGMENT_STATUS = "segment_status"
"""The column value that says `realized` (a member) or `exited` (left since the last export)."""
ExitsMode = Literal["rows", "file", "none"]
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
        require_unique(
            [column.header for column in self.columns],
            kind="duplicate_header",
            message="duplicate column headers: {values}",
            at=("columns", "header"),
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
        directory_parts, name_parts, at = self.destination.shortest_parts()
        suffix = max(
            len(MANIFEST_SUFFIX) if self.manifest else 0,
            PART_SUFFIX_BYTES if self.max_rows_per_file is not None else 0,
        ) + (len(EXITED_SUFFIX) if self.exits_mode == "file" else 0)
        shortest_name = len((name_parts[-1] if name_parts else "").encode()) + suffix
        if shortest_name > MAX_NAME_BYTES:
            raise PydanticCustomError(
                "file_name_too_long",
                "the file name is at least {size} bytes with its suffixes; "
                "file names are limited to {limit} bytes",
                {"size": shortest_name, "limit": MAX_NAME_BYTES, "at": at},
            )
        shortest_key = len("/".join(directory_parts + name_parts).encode()) + suffix
        if shortest_key > MAX_KEY_BYTES:
            raise PydanticCustomError(
                "key_too_long",
                "the object key (directory and file name) is at least {size} bytes; "
                "S3 keys are limited to {limit} bytes",
                {"size": shortest_key, "limit": MAX_KEY_BYTES, "at": ("destination",)},
            )
        return self
