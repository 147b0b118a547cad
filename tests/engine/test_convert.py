"""Whole-column conversion: each type and option gives what the per-cell converters give."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones
from zoneinfo._zoneinfo import ZoneInfo as PythonZoneInfo

import pyarrow as pa
import pytest

from connector.config.formats import ImportFormat
from connector.engine._cells import WHITESPACE
from connector.engine._datetimes import convert_dates, strftime_regex
from connector.engine.convert import convert_column, is_true_column, trim_keys
from connector.formats.values import ConversionError, make_converter

COMMA = ImportFormat(field_separator=";", decimal_separator=",")
DOT = ImportFormat()
AMSTERDAM = ImportFormat(timezone="Europe/Amsterdam")


def rows(cells, value_type, fmt, split="|"):
    """(values per row, {row: reason}) as plain Python, for readable assertions."""
    column = convert_column(
        pa.array(cells, pa.string()), value_type=value_type, fmt=fmt, split=split
    )
    errors = column.errors.to_pylist()
    assert errors == sorted(errors)
    return column.values.to_pylist(), {row: column.reason(row) for row in errors}


def per_cell(text, value_type, fmt):
    try:
        return make_converter(value_type, fmt)(text)
    except ConversionError as error:
        return error


# ---------------------------------------------------------------- cells, splits, whitespace


def test_whitespace_set_is_exactly_what_str_strip_removes():
    assert set(WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def test_text_is_stripped_split_and_empty_pieces_dropped():
    values, errors = rows(["  a | b ||c ", "", None, " | \u3000| ", "x", "\x1cy\x85"], "text", DOT)
    assert values == [["a", "b", "c"], None, None, None, ["x"], ["y"]]
    assert errors == {}


def test_single_value_column_keeps_the_separator_inside_the_value():
    values, _ = rows([" a|b ", "\xa0\u2007 "], "text", DOT, split=None)
    assert values == [["a|b"], None]


def test_whitespace_separator_splits_like_str_split():
    values, _ = rows(["a b", " a  b ", "\ta"], "text", ImportFormat(multi_value_separator=" "), " ")
    assert values == [["a", "b"], ["a", "b"], ["a"]]


def test_a_separator_is_found_in_a_slice_only_where_the_slice_has_it():
    """The separator is looked for in the column's bytes; a slice's neighbours do not count,
    and a separator beyond ASCII splits the same."""
    column = pa.array(["a|b", "c", "d", "e¦f", "g||h"], pa.string())
    values, _ = rows(column.slice(1, 2), "text", DOT)
    assert values == [["c"], ["d"]]
    values, _ = rows(column.slice(0, 2), "text", DOT)
    assert values == [["a", "b"], ["c"]]
    values, _ = rows(column.slice(3), "text", ImportFormat(multi_value_separator="¦"), "¦")
    assert values == [["e", "f"], ["g||h"]]


def test_chunked_and_empty_columns_are_accepted():
    chunked = pa.chunked_array([["1", "2"], [" 3 "]], pa.string())
    column = convert_column(chunked, value_type="number", fmt=DOT, split=None)
    assert column.values.to_pylist() == [["1"], ["2"], ["3"]]
    empty = convert_column(pa.chunked_array([], pa.string()), value_type="date", fmt=DOT, split="|")
    assert len(empty.values) == 0
    assert len(empty.errors) == 0


def test_trim_keys_strips_every_kind_of_whitespace_and_reads_null_as_empty():
    assert trim_keys(pa.array([" k1\u2009", "\x1fk2", None, "  "])).to_pylist() == [
        "k1",
        "k2",
        "",
        "",
    ]


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "fmt", [COMMA, DOT, ImportFormat(decimal_separator="'")], ids=["comma", "dot", "quote"]
)
def test_numbers_equal_the_per_cell_converter_for_every_form(fmt):
    sep = fmt.decimal_separator
    cells = [
        f"12{sep}50", f"-7{sep}25", f"+7{sep}0", f"{sep}5", f"5{sep}", f"007{sep}50", f"-0{sep}00",
        "-0", "0", "42", "-42", "12.50", "1.234,50", "1 234", "abc", "NaN", "1e5", "١٢", "+", "-",
        f"12345678901234567890123456789012{sep}000000001", "9" * 400,
    ]  # fmt: skip
    values, errors = rows(cells, "number", fmt, split=None)
    for row, text in enumerate(cells):
        expected = per_cell(text, "number", fmt)
        if isinstance(expected, ConversionError):
            assert errors[row] == str(expected)
            assert values[row] is None
        else:
            assert values[row] == [expected], text


def test_a_bad_piece_rejects_the_row_with_the_first_bad_pieces_reason():
    values, errors = rows(["1,5 | x | y", "2|3", " | abc"], "number", COMMA)
    assert values == [None, ["2", "3"], None]
    assert errors == {
        0: "'x' is not a number (decimal separator ',')",
        2: "'abc' is not a number (decimal separator ',')",
    }


def test_sum_columns_do_not_split_so_a_separator_is_not_a_number():
    _, errors = rows(["1|2"], "number", COMMA, split=None)
    assert errors == {0: "'1|2' is not a number (decimal separator ',')"}


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("fmt", "cells"),
    [
        (
            ImportFormat(date_format="%d-%m-%Y"),
            ["01-03-2024", "1-3-2024", " 31-02-2024", "x", "01-03-24"],
        ),
        (ImportFormat(date_format="%d %B %Y"), ["1 march 2024", "01 Mar 2024", "1 maart 2024"]),
        (AMSTERDAM, ["2024-03-01", "20240301", "2024-W09-5", "2024-03-01T23:30:00Z", "01-03-2024"]),
    ],
)
def test_dates_equal_the_per_cell_converter(fmt, cells):
    values, errors = rows(cells * 3, "date", fmt)
    for row, text in enumerate(cells * 3):
        expected = per_cell(text.strip(), "date", fmt)
        if isinstance(expected, ConversionError):
            assert errors[row] == str(expected)
        else:
            assert values[row] == [expected]


@pytest.mark.parametrize(
    ("date_format", "fast", "slow"),
    [
        ("%d-%m-%Y", ["05-12-1953", "5-1-2024", " 9-02-2024", "29-02-2024"], ["29-02-2023", "x"]),
        ("%y%m%d", ["531205", "240229", "690101"], ["230229", "0501011"]),
        ("%m/%d/%Y", ["12/05/1953", "2/29/2024", "02/29/2024"], ["02/29/2023", "13/01/2024"]),
        ("%Y%m%d", ["19531205", "20240229", "99991231", "2024031"], ["20230229", "09991231"]),
        ("%d.%m.%Y", ["31.12.2024", "01.01.1000"], ["00.01.2024", "32.01.2024", "31.04.2024"]),
        ("iso8601", ["1953-12-05", "2024-02-29", "9999-12-31"], ["2023-02-29", "0999-01-01"]),
        ("%d-%m-%Y %H:%M", [], ["05-12-1953 10:30", "05-12-1953"]),
    ],
)
def test_dates_of_numeric_patterns_convert_without_the_per_cell_converter(
    date_format: str, fast: list[str], slow: list[str]
) -> None:
    fmt = ImportFormat(date_format=date_format)
    oracle = make_converter("date", fmt)
    asked: list[str] = []

    def counted(text: str) -> str:
        asked.append(text)
        return oracle(text)

    converted = convert_dates(pa.array(fast + slow, pa.string()), date_format, counted)

    assert sorted(asked) == sorted(slow)  # each cell a fast path cannot read, once
    for row, text in enumerate(fast + slow):
        expected = per_cell(text.strip(), "date", fmt)
        if isinstance(expected, ConversionError):
            assert converted.reasons[row] == str(expected)
        else:
            assert converted.values[row].as_py() == expected


# ---------------------------------------------------------------- date-times

ISO_FORMS = [
    "2024-03-01", "2024-03-01T09:30", "2024-03-01 09:30", "2024-03-01T09:30:05",
    "2024-03-01T09:30:05.1", "2024-03-01T09:30:05.123456", "2024-03-01T09:30Z",
    "2024-03-01T09:30:05+05:30", "2024-03-01T09:30:05.25-00:00", "2024-03-01T09:30:05-23:59",
    "2024-02-29T12:00:00", "2023-02-29T12:00:00", "2024-04-31T00:00", "2024-03-01T24:00:00Z",
    "2024-03-01T09:30:05+0100", "20240301T093005", "1000-01-01T00:00:00+01:00",
    "9999-12-31T23:30:00-05:00", "0001-01-01T00:10:00", "2024-03-01T09:30:05.1234567", "garbage",
]  # fmt: skip


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe"]
)
def test_iso_datetimes_equal_the_per_cell_converter(zone):
    fmt = ImportFormat(timezone=zone)
    values, errors = rows(ISO_FORMS, "datetime", fmt)
    for row, text in enumerate(ISO_FORMS):
        expected = per_cell(text, "datetime", fmt)
        if isinstance(expected, ConversionError):
            assert errors[row] == str(expected), text
        else:
            assert values[row] == [expected], text


@pytest.mark.parametrize(
    ("zone", "text", "utc"),
    [
        ("Europe/Amsterdam", "2024-10-27T03:30:00", "2024-10-27T02:30:00+00:00"),  # after: +01
        ("Europe/Amsterdam", "2024-10-27T01:59:59", "2024-10-26T23:59:59+00:00"),  # before: +02
        ("Europe/Amsterdam", "2024-03-31T03:00:00", "2024-03-31T01:00:00+00:00"),  # gap's end
        ("Europe/Amsterdam", "2024-03-31T01:59:59", "2024-03-31T00:59:59+00:00"),
        ("America/New_York", "2024-11-03T02:30:00", "2024-11-03T07:30:00+00:00"),
        ("America/New_York", "2024-03-10T03:30:00", "2024-03-10T07:30:00+00:00"),
        ("Australia/Lord_Howe", "2024-04-07T02:15:00", "2024-04-06T15:45:00+00:00"),  # 30-min DST
        ("Europe/Dublin", "2024-10-27T02:30:00", "2024-10-27T02:30:00+00:00"),  # negative DST
        ("Europe/Amsterdam", "1900-06-01T12:00:00", "1900-06-01T11:40:28+00:00"),  # LMT offset
        ("Europe/Amsterdam", "2077-07-01T12:00:00", "2077-07-01T10:00:00+00:00"),  # beyond 2037
    ],
)
def test_naive_datetimes_next_to_dst_changes_take_the_zones_offset(zone, text, utc):
    fmt = ImportFormat(timezone=zone)
    assert make_converter("datetime", fmt)(text) == utc
    assert rows([text], "datetime", fmt) == ([[utc]], {})


DST_REJECTS = [
    ("Europe/Amsterdam", "2024-03-31T02:30:00", "does not exist"),  # spring forward: the gap
    ("Europe/Amsterdam", "2024-03-31T02:00:00", "does not exist"),
    ("Europe/Amsterdam", "2024-10-27T02:30:00", "happens twice"),  # fall back: the overlap
    ("Europe/Amsterdam", "2024-10-27T02:00:00", "happens twice"),
    ("America/New_York", "2024-11-03T01:30:00", "happens twice"),
    ("America/New_York", "2024-03-10T02:30:00", "does not exist"),
    ("Australia/Lord_Howe", "2024-04-07T01:45:00", "happens twice"),  # 30-min DST
    ("Australia/Lord_Howe", "2024-10-06T02:15:00", "does not exist"),
    ("Europe/Dublin", "2024-10-27T01:30:00", "happens twice"),  # negative DST
]


@pytest.mark.parametrize(("zone", "text", "kind"), DST_REJECTS)
def test_a_naive_datetime_in_a_dst_gap_or_overlap_is_rejected_naming_the_zone(zone, text, kind):
    """Policy: never guess an hour. Both paths reject, with the same reason."""
    fmt = ImportFormat(timezone=zone)
    with pytest.raises(ConversionError) as caught:
        make_converter("datetime", fmt)(text)
    reason = str(caught.value)
    assert f"{text!r} {kind} in time zone {zone}" in reason
    assert "UTC offset" in reason
    assert rows([text], "datetime", fmt) == ([None], {0: reason})


def test_the_same_moment_written_with_its_offset_is_taken():
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    convert = make_converter("datetime", fmt)
    assert convert("2024-10-27T02:30:00+02:00") == "2024-10-27T00:30:00+00:00"
    assert convert("2024-10-27T02:30:00+01:00") == "2024-10-27T01:30:00+00:00"


def test_every_minute_around_a_year_of_dst_changes_matches_the_per_cell_converter():
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    start = datetime(2024, 3, 31)
    cells = [(start + timedelta(minutes=7 * i)).isoformat() for i in range(200)]
    cells += [(datetime(2024, 10, 27) + timedelta(minutes=7 * i)).isoformat() for i in range(200)]
    values, errors = rows(cells, "datetime", fmt)
    expected = [per_cell(text, "datetime", fmt) for text in cells]
    assert values == [None if isinstance(e, ConversionError) else [e] for e in expected]
    assert errors == {i: str(e) for i, e in enumerate(expected) if isinstance(e, ConversionError)}
    assert len(errors) == 2 * 8  # 02:06 to 02:55 in 7-minute steps, spring and autumn


@pytest.mark.parametrize(
    ("pattern", "cells"),
    [
        (
            "%d-%m-%Y %H:%M",
            [
                "01-03-2024 09:30",
                "1-3-2024 9:05",
                " 1-3-2024 9:5",
                "31-02-2024 10:00",
                "01-03-2024 25:00",
            ],
        ),
        ("%Y%m%d%H%M%S", ["20240301093000", "2024031093000", "20241027023000"]),
        ("%d/%m/%y %H:%M:%S", ["01/03/68 00:00:00", "01/03/69 00:00:00", "01/03/24\t09:30:00"]),
        ("%d-%m-%YT%H", ["01-03-2024T09", "01-03-2024t09", "01-03-2024 09"]),
        ("%d %b %Y %H:%M", ["01 Mar 2024 09:30", "01 mar 2024 09:30"]),
        ("%d-%m-%Y %H:%M %z", ["01-03-2024 09:30 +0200"]),
    ],
)
def test_strftime_datetimes_equal_the_per_cell_converter(pattern, cells):
    fmt = ImportFormat(date_format=pattern, timezone="America/New_York")
    values, errors = rows(cells, "datetime", fmt)
    for row, text in enumerate(cells):
        expected = per_cell(text.strip(), "datetime", fmt)
        if isinstance(expected, ConversionError):
            assert errors[row] == str(expected), text
        else:
            assert values[row] == [expected], text


def test_only_numeric_strftime_patterns_take_the_vectorised_route():
    assert strftime_regex("%d-%m-%Y %H:%M") is not None
    assert strftime_regex("%d %b %Y") is None
    assert strftime_regex("%H:%M") is None  # no year: left to the converter
    assert strftime_regex("%d-%m-%Y é") is None


def test_fold_zero_change_points_lie_more_than_two_days_apart_in_every_zone():
    """The premise of reading a whole wall-clock day with one offset (see _walls.py)."""
    for name in available_timezones():
        change_points = PythonZoneInfo.no_cache(name)._trans_local[0]
        gaps = [b - a for a, b in pairwise(change_points)]
        assert min(gaps, default=3 * 86400) > 2 * 86400, name


def test_zone_offsets_come_from_zoneinfo_not_from_arrows_tz_database():
    """Arrow's tz database stops daylight saving after 2037; the converter does not."""
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    cells = [f"{year}-07-01T12:00:00" for year in (2036, 2038, 2050, 2400)]
    values, _ = rows(cells, "datetime", fmt)
    zone = ZoneInfo("Europe/Amsterdam")
    assert [v[0][11:13] for v in values] == ["10"] * 4
    assert all(zone.utcoffset(datetime(y, 7, 1, 12)) == timedelta(hours=2) for y in (2038, 2400))


# ---------------------------------------------------------------- booleans and the delete column


def test_booleans_use_the_formats_spellings_case_insensitively():
    fmt = ImportFormat(true_values=["oui", "Sí"], false_values=["non"])
    values, errors = rows(["OUI", " sí ", "Non|oui", "yes", ""], "boolean", fmt)
    assert values == [["true"], ["true"], ["false", "true"], None, None]
    assert errors == {3: "'yes' is not a boolean (expected one of oui, Sí or non)"}


def test_conflicting_boolean_spellings_are_refused_up_front():
    with pytest.raises(ValueError, match="both"):
        convert_column(
            pa.array(["x"]),
            value_type="boolean",
            fmt=ImportFormat(true_values=["x"], false_values=["X"]),
            split=None,
        )


def test_delete_column_reads_true_false_empty_and_rejects_other_text():
    flags = is_true_column(pa.array([" yes ", "NEE", "", None, "\u2003", "maybe", "1|0"]), DOT)
    assert flags.values.to_pylist() == [True, False, None, None, None, None, None]
    assert flags.errors.to_pylist() == [5, 6]
    expected = (
        "is not a boolean (expected one of true, yes, y, 1, ja, t or false, no, n, 0, nee, f)"
    )
    assert flags.reason(5) == f"'maybe' {expected}"
    assert flags.reason(6) == f"'1|0' {expected}"


@pytest.mark.parametrize(
    ("value_type", "fmt"),
    [
        ("number", COMMA),
        ("date", DOT),
        ("datetime", DOT),
        ("datetime", ImportFormat(date_format="%d-%m-%Y %H")),
        ("boolean", DOT),
        ("text", DOT),
    ],
)
def test_columns_with_nothing_in_them_give_only_nulls(value_type, fmt):
    assert rows(["", " ", "|", None], value_type, fmt) == ([None] * 4, {})


def test_large_and_dictionary_string_columns_convert_like_plain_ones():
    for cells in (
        pa.array(["1,5", "x"], pa.large_string()),
        pa.array(["1,5", "x"]).dictionary_encode(),
    ):
        column = convert_column(cells, value_type="number", fmt=COMMA, split=None)
        assert column.values.to_pylist() == [["1.5"], None]
        assert column.errors.to_pylist() == [1]


def test_leap_days_are_read_only_in_leap_years():
    values, errors = rows(
        ["2024-02-29T10:00", "2023-02-29T10:00", "1900-02-29", "2000-02-29"], "datetime", DOT
    )
    assert values == [["2024-02-29T10:00:00+00:00"], None, None, ["2000-02-29T00:00:00+00:00"]]
    assert sorted(errors) == [1, 2]
