"""How delimited files are read (import goals) and written (export goals)."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

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


def zone_of(name: str) -> tzinfo:
    """The zone of a format's `timezone`: `datetime.UTC` itself for "UTC" (the common
    case, and cheaper than its `ZoneInfo`), else the IANA zone."""
    return UTC if name == "UTC" else ZoneInfo(name)


_STRPTIME_DIRECTIVES = frozenset("aAwdbBmyYHIpMSfzZjUWVGucxX%")
"""What `datetime.strptime` reads (Python 3.11); any other directive fails every row."""
_YEAR_DIRECTIVES = frozenset("YyGcx")
_MONTH_DIRECTIVES = frozenset("mbBjUWVcx")
_SAMPLE_MOMENT = datetime(2024, 11, 28, 13, 45, 30, 123456, tzinfo=UTC)
"""Two-digit day, month and hour, so a pattern that reads its own output is unambiguous."""


def _directives(pattern: str) -> list[str]:
    """The directive letters of a strftime pattern; `%` at the very end is reported as ''."""
    found: list[str] = []
    index = pattern.find("%")
    while index != -1:
        directive = pattern[index + 1 : index + 2]
        found.append(directive)
        index = pattern.find("%", index + 2)
    return found


def _written_date_format(value: str) -> str:
    """'iso8601' or a strftime pattern: what an export writes (glibc's %-d and %F included)."""
    if value.lower() == "iso8601":
        return "iso8601"
    if "%" not in value:
        raise ValueError(
            f"date_format must be 'iso8601' or a strftime pattern like '%d-%m-%Y', got {value!r}"
        )
    return value


def _date_format(value: str) -> str:
    """'iso8601', or a strftime pattern that can read a date: checked once here, not per row."""
    value = _written_date_format(value)
    if value == "iso8601":
        return value
    directives = _directives(value)
    if "" in directives:
        raise ValueError(
            f"date_format {value!r} ends with a lone '%' (write %% for a percent sign)"
        )
    unknown = sorted({f"%{d}" for d in directives if d not in _STRPTIME_DIRECTIVES})
    if unknown:
        raise ValueError(
            f"date_format {value!r} has unknown directive {', '.join(unknown)} "
            "(known: %Y %y %m %d %H %M %S %f %b %B %a %A %j %p %I %z and the others of strptime)"
        )
    used = set(directives)
    repeated = sorted({f"%{d}" for d in directives if d != "%" and directives.count(d) > 1})
    if repeated:
        raise ValueError(f"date_format {value!r} repeats {', '.join(repeated)}")
    if not used & _YEAR_DIRECTIVES or not used & _MONTH_DIRECTIVES:
        raise ValueError(
            f"date_format {value!r} does not say which date it is: it needs a year (%Y or %y) "
            "and a month (%m, %b or %B) or a day of the year (%j)"
        )
    try:
        datetime.strptime(_SAMPLE_MOMENT.strftime(value), value)
    except (ValueError, re.error) as error:
        raise ValueError(
            f"date_format {value!r} cannot read the dates it describes ({error})"
        ) from None
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
_DATE_FORMAT_SCHEMA = WithJsonSchema(
    {"type": "string", "anyOf": [{"pattern": "^[Ii][Ss][Oo]8601$"}, {"pattern": "%"}]}
)
DateFormat = Annotated[str, AfterValidator(_date_format), _DATE_FORMAT_SCHEMA]
"""A pattern files are read with (import goals): strptime must be able to read a date with it."""
WrittenDateFormat = Annotated[str, AfterValidator(_written_date_format), _DATE_FORMAT_SCHEMA]


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
                # point at the key the file wrote (the other may be a default)
                written = [key for key in (role, seen[char]) if key in self.model_fields_set]
                raise PydanticCustomError(
                    "separators_clash",
                    "{role} and {other} are both {char}; they must differ",
                    {"role": role, "other": seen[char], "char": repr(char), "at": written[:1]},
                )
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

    @model_validator(mode="after")
    def _booleans_differ(self) -> Self:
        both = {value.strip().casefold() for value in self.true_values} & {
            value.strip().casefold() for value in self.false_values
        }
        if both:
            raise PydanticCustomError(
                "boolean_spelling_twice",
                "{spellings} is listed in both true_values and false_values (spellings are "
                "compared ignoring case)",
                {"spellings": ", ".join(map(repr, sorted(both))), "at": ("false_values",)},
            )
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

    date_format: WrittenDateFormat = Field(
        default="iso8601",
        description="iso8601, or a strftime pattern like %d-%m-%Y for date columns.",
    )
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
