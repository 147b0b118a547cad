"""How delimited files are read (import goals) and written (export goals)."""

from __future__ import annotations

import codecs
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

_ESCAPED_CHARACTERS = {"\\t": "\t", "tab": "\t", "\\n": "\n", "\\r": "\r"}


def _single_character(value: str) -> str:
    """Accept one character, spelling a tab as `"\\t"` or `tab` as users write it."""
    value = _ESCAPED_CHARACTERS.get(value, value)
    if len(value) != 1:
        raise ValueError(f"must be a single character, got {value!r}")
    if value in "\r\n":
        raise ValueError("a line break cannot be a separator")
    return value


def _known_encoding(value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}") from None
    return value


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Amsterdam)"
        ) from None
    return value


def _date_format(value: str) -> str:
    if value.lower() == "iso8601":
        return "iso8601"
    if "%" not in value:
        raise ValueError(
            f"date_format must be 'iso8601' or a strftime pattern like '%d-%m-%Y', got {value!r}"
        )
    return value


# The JSON Schema says what the validators accept as far as a schema can (see config/schema.py).
Character = Annotated[
    str,
    AfterValidator(_single_character),
    WithJsonSchema(
        {
            "type": "string",
            "anyOf": [
                {"minLength": 1, "maxLength": 1, "not": {"enum": ["\n", "\r"]}},
                {"enum": ["\\t", "tab"]},
            ],
        }
    ),
]
Encoding = Annotated[str, AfterValidator(_known_encoding)]
TimeZoneName = Annotated[str, AfterValidator(_known_timezone)]
DateFormat = Annotated[
    str,
    AfterValidator(_date_format),
    WithJsonSchema(
        {"type": "string", "anyOf": [{"pattern": "^[Ii][Ss][Oo]8601$"}, {"pattern": "%"}]}
    ),
]


class _FormatBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field_separator: Character = Field(
        default=",", description='One character between fields; "\\t" (or tab) for a tab.'
    )
    decimal_separator: Character = Field(
        default=".", description="The character between a number's whole and decimal part."
    )
    multi_value_separator: Character = Field(
        default="|", description="The character between the values of a multi-valued cell."
    )
    quote_char: Character = Field(
        default='"', description="The character that quotes a field holding separators."
    )
    escape_char: Character | None = Field(
        default=None,
        description="A character escaping quotes (e.g. a backslash); default none: quotes "
        "are escaped by doubling.",
    )
    encoding: Encoding = Field(
        default="utf-8",
        description="Any Python codec, e.g. utf-8 (a BOM is ignored), latin-1, cp1252.",
    )
    date_format: DateFormat = Field(
        default="iso8601",
        description="iso8601, or a strftime pattern like %d-%m-%Y for date columns.",
    )
    timezone: TimeZoneName = Field(
        default="UTC",
        description="An IANA time zone (Europe/Amsterdam): the zone of date-times without "
        "an offset.",
    )
    header: bool = Field(
        default=True,
        description="The first row holds the column names; false needs `columns` on import.",
    )

    @model_validator(mode="after")
    def _separators_differ(self) -> Self:
        roles = {
            "field_separator": self.field_separator,
            "decimal_separator": self.decimal_separator,
            "multi_value_separator": self.multi_value_separator,
            "quote_char": self.quote_char,
        }
        if self.escape_char is not None:
            roles["escape_char"] = self.escape_char
        seen: dict[str, str] = {}
        for role, char in roles.items():
            if char in seen:
                raise ValueError(f"{role} and {seen[char]} are both {char!r}; they must differ")
            seen[char] = role
        return self


class ImportFormat(_FormatBase):
    """The dialect of an incoming file. Booleans accept the listed spellings, case-insensitively."""

    columns: list[str] | None = Field(
        default=None,
        description="The column names of a file without a header row (header: false).",
    )
    true_values: list[str] = Field(
        default_factory=lambda: ["true", "yes", "y", "1", "ja", "t"],
        description="Spellings of true in boolean columns (and delete_column), case-insensitive.",
    )
    false_values: list[str] = Field(
        default_factory=lambda: ["false", "no", "n", "0", "nee", "f"],
        description="Spellings of false in boolean columns, case-insensitive.",
    )

    @model_validator(mode="after")
    def _columns_when_headerless(self) -> Self:
        if not self.header and not self.columns:
            raise ValueError("a file without a header row (header: false) needs `columns: [...]`")
        if self.header and self.columns:
            raise ValueError("`columns` is only for files without a header row (header: false)")
        if self.columns is not None:
            duplicates = sorted({name for name in self.columns if self.columns.count(name) > 1})
            if duplicates:
                raise ValueError(f"duplicate column names: {', '.join(duplicates)}")
        return self


class ExportFormat(_FormatBase):
    """The dialect of an exported file.

    `formula_guard` prefixes a cell starting with `=`, `+`, `-`, `@`, tab or CR
    with a `'` so spreadsheet programs do not run it as a formula.

    `null_value` is written for a property the profile does not have,
    `empty_value` for one it has with an empty text, so a partner can tell
    "unknown" from "known to be empty". Either may be any text; the spelling
    `'""'` writes a quoted empty field (`""`) rather than two quote characters.
    """

    null_value: str = Field(
        default="",
        description="Written for a property the profile does not have; '\"\"' writes a quoted "
        "empty field.",
    )
    empty_value: str = Field(
        default="", description="Written for a property the profile has with an empty text."
    )
    quote_all: bool = Field(
        default=False, description="Quote every field, not only those that need it."
    )
    formula_guard: bool = Field(
        default=True,
        description="Prefix a cell starting with =, +, -, @, tab or CR with ' so spreadsheet "
        "programs do not run it as a formula.",
    )
    line_terminator: Literal["\n", "\r\n"] = Field(
        default="\n", description='"\\n" (default) or "\\r\\n" after each row.'
    )
