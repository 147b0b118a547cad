"""Cell conversions: what the store keeps for each type, and the reasons given for bad cells."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from connector.config.formats import ImportFormat
from connector.formats.values import CACHE_SIZE, ConversionError, add_numbers, make_converter

COMMA = ImportFormat(field_separator=";", decimal_separator=",")
DOT = ImportFormat()


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("12,50", "12.50"),
        ("3,10", "3.10"),
        ("-7,25", "-7.25"),
        ("+7", "7"),
        (",5", "0.5"),
        ("5,", "5"),
        ("007,50", "7.50"),
        ("-0,00", "0.00"),
        (" 42 ", "42"),
        (
            "12345678901234567890123456789012,000000001",
            "12345678901234567890123456789012.000000001",
        ),
    ],
)
def test_number_with_decimal_comma_becomes_canonical_decimal_text_keeping_scale(text, canonical):
    assert make_converter("number", COMMA)(text) == canonical


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("12.50", "12.50"),
        ("0", "0"),
        ("-0", "0"),
        ("-0.5", "-0.5"),
        ("+1.0", "1.0"),
        (".25", "0.25"),
        ("0.0000001", "0.0000001"),
        ("100000000000000000000000000000000", "100000000000000000000000000000000"),
    ],
)
def test_number_with_decimal_dot_becomes_canonical_decimal_text(text, canonical):
    assert make_converter("number", DOT)(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "1e5",
        "12.50",
        "1.234,50",
        "1 234",
        "1,2,3",
        "   ",
        "+",
        "-",
        ",",
        "12,5 0",
        "0x1A",
        "١٢",
    ],
)
def test_number_rejects_text_that_is_not_a_plain_decimal(text):
    with pytest.raises(ConversionError, match="is not a number"):
        make_converter("number", COMMA)(text)


def test_number_rejects_thousands_separators_with_dot_decimal():
    convert = make_converter("number", DOT)
    for text in ["1,234.50", "1 234.50", "1'234"]:
        with pytest.raises(ConversionError):
            convert(text)


def test_number_error_names_the_value_and_the_decimal_separator():
    with pytest.raises(ConversionError) as caught:
        make_converter("number", COMMA)("abc")
    assert str(caught.value) == "'abc' is not a number (decimal separator ',')"


def test_number_error_hints_at_thousands_separators_when_they_look_used():
    with pytest.raises(ConversionError, match="without thousands separators"):
        make_converter("number", COMMA)("1.234,50")


def test_number_error_shortens_huge_cells():
    with pytest.raises(ConversionError) as caught:
        make_converter("number", DOT)("x" * 10_000)
    assert len(str(caught.value)) < 200


def test_add_numbers_is_exact_decimal_arithmetic():
    assert add_numbers("12.50", "3.10") == "15.60"
    assert add_numbers("0.1", "0.2") == "0.3"
    assert add_numbers("-12.50", "12.50") == "0.00"
    assert add_numbers("1.5", "2") == "3.5"
    assert add_numbers("99999999999999999999999999999.99", "0.01") == (
        "100000000000000000000000000000.00"
    )
    assert add_numbers("0.0000001", "0.0000001") == "0.0000002"


def test_add_numbers_counts_an_empty_operand_as_zero():
    assert add_numbers("", "3.10") == "3.10"
    assert add_numbers("", "") == "0"


def test_add_numbers_rejects_a_non_number():
    with pytest.raises(ConversionError, match="is not a number"):
        add_numbers("abc", "1")


def test_summing_converted_cells_gives_the_products_example():
    convert = make_converter("number", COMMA)
    assert add_numbers(convert("12,50"), convert("3,10")) == "15.60"


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("%d-%m-%Y", "01-03-2024"),
        ("%d-%m-%Y", "1-3-2024"),
        ("%d/%m/%Y", "01/03/2024"),
        ("%m/%d/%Y", "03/01/2024"),
        ("%Y%m%d", "20240301"),
        ("%Y-%m-%d", "2024-03-01"),
        ("%d.%m.%y", "01.03.24"),
        ("%d %b %Y", "01 Mar 2024"),
        ("%d %B %Y", "1 march 2024"),
        ("%Y-%m-%d %H:%M", "2024-03-01 23:59"),
    ],
)
def test_date_with_strftime_pattern_becomes_iso_date(pattern, text):
    fmt = ImportFormat(date_format=pattern)
    assert make_converter("date", fmt)(text) == "2024-03-01"


def test_date_tolerates_surrounding_spaces():
    assert make_converter("date", ImportFormat(date_format="%d-%m-%Y"))(" 01-03-2024 ") == (
        "2024-03-01"
    )


def test_invalid_calendar_date_is_rejected_with_the_expected_pattern():
    with pytest.raises(ConversionError) as caught:
        make_converter("date", ImportFormat(date_format="%d-%m-%Y"))("31-02-2024")
    assert str(caught.value) == "'31-02-2024' is not a valid date (expected %d-%m-%Y)"


@pytest.mark.parametrize("text", ["2024-03-01", "01-03-24", "01-13-2024", "abc", "01-03-2024x"])
def test_date_in_another_shape_is_rejected(text):
    with pytest.raises(ConversionError, match="is not a valid date"):
        make_converter("date", ImportFormat(date_format="%d-%m-%Y"))(text)


@pytest.mark.parametrize(
    "pattern", ["%d-%m-%Y", "%Y%m%d", "%d/%m/%y", "%Y-%m-%d %H:%M:%S", "%d %m %Y"]
)
def test_fast_date_parsing_accepts_exactly_what_strptime_accepts(pattern):
    rng = random.Random(7)
    convert = make_converter("datetime", ImportFormat(date_format=pattern))
    start = datetime(1960, 1, 1)
    samples = []
    for _ in range(2000):
        moment = start + timedelta(seconds=rng.randrange(80 * 365 * 86400))
        text = moment.strftime(pattern)
        samples.append(text)
        samples.append(text.replace("0", "", 1))
        samples.append(text[:-1])
        position = rng.randrange(len(text))
        samples.append(text[:position] + rng.choice("0123456789 -/x") + text[position + 1 :])
    for text in samples:
        try:
            expected = datetime.strptime(text.strip(), pattern).isoformat() + "+00:00"
        except ValueError:
            expected = None
        try:
            actual = convert(text)
        except ConversionError:
            actual = None
        assert actual == expected, text


def test_two_digit_years_pivot_like_strptime():
    convert = make_converter("date", ImportFormat(date_format="%d-%m-%y"))
    assert convert("01-03-68") == "2068-03-01"
    assert convert("01-03-69") == "1969-03-01"


def test_date_converter_memoises_in_a_bounded_cache():
    convert = make_converter("date", ImportFormat(date_format="%d-%m-%Y"))
    convert("01-03-2024")
    convert("01-03-2024")
    info = convert.cache_info()  # type: ignore[attr-defined]
    assert info.hits == 1
    assert info.maxsize == CACHE_SIZE


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-03-01", "2024-03-01"),
        ("20240301", "2024-03-01"),
        ("2024-W09-5", "2024-03-01"),
        ("2024-061", "2024-03-01"),
        ("2024-03-01T09:30:00", "2024-03-01"),
        ("2024-03-01T23:30:00Z", "2024-03-02"),
        ("2024-03-01T00:30:00+05:00", "2024-02-29"),
    ],
)
def test_iso8601_date_is_read_in_the_format_timezone(text, canonical):
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    assert make_converter("date", fmt)(text) == canonical


def test_iso8601_date_error_shows_an_example():
    with pytest.raises(ConversionError, match=r"expected ISO 8601, e.g. 2024-03-01\)"):
        make_converter("date", DOT)("01-03-2024")


# ---------------------------------------------------------------- date-times


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2024-03-01T09:30:00", "2024-03-01T08:30:00+00:00"),
        ("2024-07-01T09:30:00", "2024-07-01T07:30:00+00:00"),
        ("2024-03-01 09:30", "2024-03-01T08:30:00+00:00"),
        ("2024-03-01T09:30:00Z", "2024-03-01T09:30:00+00:00"),
        ("2024-03-01T09:30:00-05:00", "2024-03-01T14:30:00+00:00"),
        ("2024-03-01T09:30:00.250+01:00", "2024-03-01T08:30:00.250000+00:00"),
        ("2024-03-01", "2024-02-29T23:00:00+00:00"),
        ("2024-03-01T24:00:00Z", "2024-03-02T00:00:00+00:00"),
    ],
)
def test_iso8601_datetime_becomes_utc_with_naive_input_in_the_format_timezone(text, canonical):
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    assert make_converter("datetime", fmt)(text) == canonical


def test_strftime_datetime_is_read_in_the_format_timezone():
    fmt = ImportFormat(date_format="%d-%m-%Y %H:%M", timezone="America/New_York")
    assert make_converter("datetime", fmt)("01-03-2024 09:30") == "2024-03-01T14:30:00+00:00"


def test_datetime_pattern_with_offset_directive_uses_the_written_offset():
    fmt = ImportFormat(date_format="%d-%m-%Y %H:%M %z", timezone="Europe/Amsterdam")
    assert make_converter("datetime", fmt)("01-03-2024 09:30 +0200") == (
        "2024-03-01T07:30:00+00:00"
    )


def test_ambiguous_wall_clock_time_at_dst_end_is_rejected_naming_both_offsets():
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    with pytest.raises(ConversionError) as caught:
        make_converter("datetime", fmt)("2024-10-27T02:30:00")
    assert str(caught.value) == (
        "'2024-10-27T02:30:00' happens twice in time zone Europe/Amsterdam (the clocks go back "
        "at that moment); write it with its UTC offset (+02:00 for the first, +01:00 for the "
        "second)"
    )


def test_wall_clock_time_in_the_spring_gap_is_rejected_naming_the_zone():
    fmt = ImportFormat(date_format="%d-%m-%Y %H:%M", timezone="Europe/Amsterdam")
    with pytest.raises(ConversionError) as caught:
        make_converter("datetime", fmt)("31-03-2024 02:30")
    assert str(caught.value) == (
        "'31-03-2024 02:30' does not exist in time zone Europe/Amsterdam (the clocks go forward "
        "at that moment); write it with its UTC offset or fix the time"
    )


@pytest.mark.parametrize("text", ["0001-01-01T00:10:00", "9999-12-31T23:30:00-05:00"])
def test_datetime_that_leaves_the_calendar_in_utc_is_rejected(text):
    fmt = ImportFormat(timezone="Europe/Amsterdam")
    with pytest.raises(ConversionError, match="is out of range"):
        make_converter("datetime", fmt)(text)


def test_utc_format_keeps_naive_times_as_they_are():
    assert make_converter("datetime", DOT)("2024-03-01T09:30:00") == "2024-03-01T09:30:00+00:00"


def test_invalid_datetime_is_rejected_with_the_expected_pattern():
    fmt = ImportFormat(date_format="%d-%m-%Y %H:%M")
    with pytest.raises(ConversionError) as caught:
        make_converter("datetime", fmt)("01-03-2024 25:00")
    assert (
        str(caught.value) == "'01-03-2024 25:00' is not a valid date-time (expected %d-%m-%Y %H:%M)"
    )


# ---------------------------------------------------------------- booleans and text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("true", "true"),
        ("TRUE", "true"),
        ("Yes", "true"),
        (" ja ", "true"),
        ("1", "true"),
        ("T", "true"),
        ("false", "false"),
        ("NEE", "false"),
        ("n", "false"),
        ("0", "false"),
    ],
)
def test_boolean_spellings_are_case_insensitive(text, canonical):
    assert make_converter("boolean", DOT)(text) == canonical


def test_boolean_uses_the_formats_own_spellings():
    fmt = ImportFormat(true_values=["oui", "Sí"], false_values=["non"])
    convert = make_converter("boolean", fmt)
    assert convert("OUI") == "true"
    assert convert("sí") == "true"
    assert convert("Non") == "false"
    with pytest.raises(ConversionError, match="'yes' is not a boolean"):
        convert("yes")


def test_boolean_error_lists_what_is_accepted():
    with pytest.raises(ConversionError) as caught:
        make_converter("boolean", ImportFormat(true_values=["y"], false_values=["n"]))("maybe")
    assert str(caught.value) == "'maybe' is not a boolean (expected one of y or n)"


def test_a_spelling_that_is_both_true_and_false_is_refused_up_front():
    with pytest.raises(ValueError, match="both true_values and false_values"):
        ImportFormat(true_values=["x"], false_values=["X"])  # at validate time, not per row
    fmt = ImportFormat.model_construct(true_values=["x"], false_values=["X"])
    with pytest.raises(ValueError, match="both"):
        make_converter("boolean", fmt)


def test_text_is_kept_exactly_and_multi_values_are_not_split():
    convert = make_converter("text", DOT)
    assert convert("  a|b|c  ") == "  a|b|c  "
