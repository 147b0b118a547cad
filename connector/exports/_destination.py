"""Where an export goal writes: its `destination` (bucket, directory, file name) as written.

The file-name forms and their tokens, and the limits of S3 keys and of
partners' file names, are validated here when the goal is loaded; the keys
of a run are built from them in `connector.exports.keys`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Self

from pydantic import (
    Field,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connector.config.goal_parts import BucketName, StrictModel

__all__ = [
    "CUSTOM_TEXT_MACRO",
    "DATETIME_MACRO",
    "DESTINATION_MACRO",
    "EXITED_SUFFIX",
    "FILE_NAME_MACROS",
    "MANIFEST_SUFFIX",
    "MAX_KEY_BYTES",
    "MAX_NAME_BYTES",
    "PART_SUFFIX_BYTES",
    "SEGMENT_ID_MACRO",
    "SEGMENT_MACROS",
    "SEGMENT_NAME_MACRO",
    "SEGMENT_TIMESTAMP",
    "TIMESTAMP_MACRO",
    "Destination",
    "FileNamePattern",
]

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
EXITED_SUFFIX: Final = "_exited"
"""Inserted before the extensions of an `exits: file` export's sibling file."""

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

    def shortest_parts(self) -> tuple[list[str], list[str], tuple[str, ...]]:
        """The key parts of the directory and of the file name with every token at its
        shortest (a segment name as one character), and where the file name is in the YAML."""
        file_name = self.file_name
        at: tuple[str, ...] = ("destination", "file_name")
        if isinstance(file_name, FileNamePattern):
            name = _shortest(file_name.pattern, FILE_NAME_MACROS, file_name.custom_text)
            at = (*at, "pattern")
        elif file_name == SEGMENT_TIMESTAMP:
            name = "x_YYYYMMDDTHHMMSSZ.csv"
        else:
            name = _shortest(file_name, SEGMENT_MACROS)
        directory = _shortest(self.directory, SEGMENT_MACROS)
        return _key_parts(directory), _key_parts(name), at


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
