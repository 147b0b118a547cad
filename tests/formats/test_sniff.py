"""Sniffing a sample: each detection, with the evidence and ambiguity it reports."""

from __future__ import annotations

import codecs

import pytest

from connector.errors import FormatError
from connector.formats.sniff import (
    ColumnGuess,
    SniffResult,
    decode_sample,
    detect_date_format,
    detect_encoding,
    detect_header,
    detect_identifier,
    read_records,
    snake_case,
    sniff,
)


def sniffed(text: str, *, encoding: str = "utf-8", truncated: bool = False) -> SniffResult:
    return sniff(text.encode(encoding), truncated=truncated)


def column(result: SniffResult, name: str) -> ColumnGuess:
    [found] = [guess for guess in result.columns if guess.name == name]
    return found


# ---------------------------------------------------------------- encoding and BOM


def test_a_utf8_bom_is_named_and_kept_out_of_the_first_column_name() -> None:
    result = sniff(codecs.BOM_UTF8 + "customer_id,name\nC1,Zoë\n".encode(), truncated=False)

    assert result.encoding.value == "utf-8"
    assert "byte-order mark" in result.encoding.evidence
    assert [c.name for c in result.columns] == ["customer_id", "name"]


def test_utf16_with_a_bom_is_recognised_and_decoded() -> None:
    data = "customer_id;name\nC1;Łukasz\nC2;Zoë\n".encode("utf-16")

    result = sniff(data, truncated=False)

    assert result.encoding.value == "utf-16"
    assert result.field_separator.value == ";"
    assert [c.name for c in result.columns] == ["customer_id", "name"]


def test_latin1_bytes_that_are_not_utf8_are_read_as_latin1_with_the_offending_byte() -> None:
    data = "customer_id,name\nC1,Zoë Müller\nC2,Ångström\n".encode("latin-1")

    finding = detect_encoding(data)

    assert finding.value == "latin-1"
    assert "0xeb" in finding.evidence
    assert decode_sample(data, finding.value, truncated=False).endswith("Ångström\n")


def test_windows_1252_punctuation_picks_cp1252() -> None:
    data = "id,price\n1,€ 5\n2,“quoted”\n".encode("cp1252")

    assert detect_encoding(data).value == "cp1252"


def test_plain_ascii_and_real_utf8_are_utf8() -> None:
    assert detect_encoding(b"id,name\n1,Ann\n").evidence.startswith("plain ASCII")
    assert detect_encoding("id,name\n1,Zoë\n".encode()).value == "utf-8"


def test_a_sample_cut_inside_a_multibyte_character_still_decodes() -> None:
    data = "id,name\n1,Zoë\n2,Zoë\n".encode()
    cut = data[: data.rindex("ë".encode()) + 1]  # half of the last ë

    assert detect_encoding(cut).value == "utf-8"
    assert decode_sample(cut, "utf-8", truncated=True).endswith("2,Zo")


# ---------------------------------------------------------------- separator and quote


@pytest.mark.parametrize(
    ("separator", "expected"),
    [(",", ","), (";", ";"), ("\t", "\t"), ("|", "|")],
)
def test_the_separator_with_consistent_field_counts_wins(separator: str, expected: str) -> None:
    other = "," if separator != "," else ";"
    text = "\n".join(
        separator.join(row)
        for row in (
            ["customer_id", "name", "note"],
            ["C1", "Ann", f"a{other}b"],
            ["C2", "Bob", "plain"],
            ["C3", "Cy", f"x{other}y{other}z"],
        )
    )

    result = sniffed(text + "\n")

    assert result.field_separator.value == expected
    assert "3 fields on 4 of the first 4 records" in result.field_separator.evidence


def test_a_quoted_separator_does_not_split_the_field() -> None:
    result = sniffed('customer_id;name\nC1;"Dirk; Jr."\nC2;"Eve; Sr."\nC3;Fay\n')

    assert result.field_separator.value == ";"
    assert result.quote_char.value == '"'
    assert "2 fields are wrapped" in result.quote_char.evidence
    assert result.ragged == []


def test_single_quotes_are_detected_when_fields_are_wrapped_in_them() -> None:
    result = sniffed("customer_id;name\nC1;'Dirk; Jr.'\nC2;'it''s'\nC3;Fay\n")

    assert result.quote_char.value == "'"
    assert result.ragged == []


def test_quoted_newlines_keep_records_whole() -> None:
    text = 'customer_id\tname\tpoints\r\nC1\tAnn\t1\r\nC2\t"Bram\r\nB."\t2\r\nC3\tCy\t3\r\n'

    result = sniffed(text)

    assert result.field_separator.value == "\t"
    assert result.records == 3
    assert result.ragged == []
    assert column(result, "points").value_type == "number"
    records = read_records(text, "\t", '"', truncated=False)
    assert records[2] == ["C2", "Bram\r\nB.", "2"]


def test_a_truncated_sample_drops_its_last_possibly_cut_record() -> None:
    text = "id,name\n1,Ann\n2,Bob\n3,Cy"

    assert read_records(text, ",", '"', truncated=True) == [
        ["id", "name"],
        ["1", "Ann"],
        ["2", "Bob"],
    ]
    assert read_records(text, ",", '"', truncated=False)[-1] == ["3", "Cy"]


def test_a_sample_cut_inside_a_quoted_field_loses_only_that_record() -> None:
    text = 'id,note\n1,"short"\n2,"a long note\nthat goes on'

    assert read_records(text, ",", '"', truncated=True) == [["id", "note"], ["1", "short"]]


# ---------------------------------------------------------------- header and identifier


def test_a_first_row_of_names_is_a_header() -> None:
    finding = detect_header(["customer_id", "email"], [["C1", "a@x.org"]])

    assert finding.value == "true"


@pytest.mark.parametrize(
    ("first", "why"),
    [
        (["C1", "12.50"], "number or date"),
        (["C1", "2024-01-01"], "number or date"),
        (["C1", ""], "empty"),
        (["C1", "C1"], "repeats"),
    ],
)
def test_a_first_row_of_data_is_no_header(first: list[str], why: str) -> None:
    finding = detect_header(first, [["C2", "3.10"]])

    assert finding.value == "false"
    assert why in finding.evidence


def test_a_headerless_file_gets_numbered_columns() -> None:
    result = sniffed("C1,12.50,2024-01-01\nC2,3.10,2024-02-01\n")

    assert not result.has_header
    assert [c.name for c in result.columns] == ["column_1", "column_2", "column_3"]
    assert result.records == 2


def test_the_identifier_is_unique_non_empty_and_prefers_an_id_like_name() -> None:
    names = ["name", "email", "customer_id"]
    values = [["Ann", "Bob"], ["a@x.org", "b@x.org"], ["C1", "C2"]]

    index, evidence = detect_identifier(names, values)

    assert index == 2
    assert "unique and non-empty on all 2 sampled rows, an id-like name" in evidence


def test_an_id_name_beats_a_number_name_which_beats_an_e_mail() -> None:
    names = ["email", "phone_number", "member_id"]
    values = [["a@x.org", "b@x.org"], ["0612", "0613"], ["M1", "M2"]]

    assert detect_identifier(names, values)[0] == 2
    assert detect_identifier(names[:2], values[:2]) == (
        1,
        "unique and non-empty on all 2 sampled rows, a number-like name",
    )
    assert detect_identifier(names[:1], values[:1])[1].endswith("an e-mail name")


def test_a_column_with_an_empty_or_repeated_value_is_no_identifier() -> None:
    names = ["customer_id", "household_id", "email"]
    values = [["C1", ""], ["H1", "H1"], ["a@x.org", "b@x.org"]]

    assert detect_identifier(names, values)[0] == 2
    assert detect_identifier(names[:2], values[:2]) == (
        None,
        "no column is unique and non-empty on every sampled row",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("First Name", "first_name"),
        ("firstName", "first_name"),
        ("customerID", "customer_id"),
        ("E-mail address", "e_mail_address"),
        ("  Total (EUR) ", "total_eur"),
        ("2nd phone", "c_2nd_phone"),
        ("???", "column"),
        ("Straße", "strasse"),
        ("naïve Größe", "naive_grosse"),
    ],
)
def test_property_names_are_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


# ---------------------------------------------------------------- numbers and lists


def test_decimal_commas_are_detected_and_amounts_flagged_as_sum_candidates() -> None:
    result = sniffed("customer_id;spent;visits\nC1;1250,50;3\nC2;310,00;4\nC3;12,5;5\n")

    assert result.decimal_separator.value == ","
    assert "spent (e.g. 1250,50)" in result.decimal_separator.evidence
    spent = column(result, "spent")
    assert spent.value_type == "number"
    assert spent.amount
    assert "sum" in " ".join(spent.notes)
    assert column(result, "visits").value_type == "number"
    assert not column(result, "visits").amount


def test_a_comma_separated_file_keeps_the_decimal_point() -> None:
    result = sniffed('customer_id,score\nC1,"1,5"\nC2,2.5\n')

    assert result.decimal_separator.value == "."
    assert column(result, "score").value_type == "text"


def test_digits_with_leading_zeros_stay_text() -> None:
    result = sniffed("customer_id,zip\nC1,01234\nC2,98765\n")

    zip_code = column(result, "zip")
    assert zip_code.value_type == "text"
    assert "leading zeros" in zip_code.notes[0]


def test_booleans_in_the_import_spellings_are_boolean() -> None:
    result = sniffed("customer_id,vip,active\nC1,yes,1\nC2,No,0\nC3,ja,1\n")

    assert column(result, "vip").value_type == "boolean"
    assert column(result, "active").value_type == "number"
    assert column(result, "active").notes == ["only 0 and 1: type boolean if it is a flag"]


def test_lists_pick_the_multi_value_separator_and_their_items_are_typed() -> None:
    result = sniffed(
        "customer_id;interests;scores\nC1;news|running;1|2\nC2;cycling;3\nC3;a|b|c;4|5\n"
    )

    assert result.multi_value_separator.value == "|"
    assert "interests (e.g. news|running)" in result.multi_value_separator.evidence
    assert column(result, "interests").multi_valued
    assert column(result, "scores").value_type == "number"


def test_a_list_separator_found_inside_dates_is_refused() -> None:
    result = sniffed(
        "customer_id,birth,tags\nC1,17/05/1985,a/b\nC2,02/11/1990,c/d\nC3,01/01/2000,e\n"
    )

    assert result.multi_value_separator.value != "/"
    assert column(result, "birth").value_type == "date"
    assert column(result, "birth").date_format == "%d/%m/%Y"


def test_without_lists_a_character_no_cell_holds_is_the_multi_value_separator() -> None:
    result = sniffed("customer_id,note\nC1,a|b c\nC2,x\n")

    assert result.multi_value_separator.value not in "|,\"'"
    assert "no lists" in result.multi_value_separator.evidence


def test_mostly_numbers_with_a_stray_word_stay_text_with_a_note() -> None:
    rows = "\n".join(f"C{i},{i}" for i in range(1, 10))

    result = sniffed(f"customer_id,points\n{rows}\nC10,abc\n")

    points = column(result, "points")
    assert points.value_type == "text"
    assert points.notes == ["9 of 10 values are numbers, not 'abc': kept as text"]


# ---------------------------------------------------------------- dates


def test_a_day_above_12_proves_day_first() -> None:
    guess = detect_date_format(["02-11-1990", "17-05-1985"])

    assert guess is not None
    assert (guess.value_type, guess.date_format, guess.ambiguous) == ("date", "%d-%m-%Y", False)
    assert guess.evidence == "17-05-1985 has 17 first, so day first"


def test_a_day_above_12_in_second_place_proves_month_first() -> None:
    guess = detect_date_format(["11/02/1990", "05/17/1985"])

    assert guess is not None
    assert guess.date_format == "%m/%d/%Y"
    assert guess.evidence == "05/17/1985 has 17 second, so month first"


def test_dates_that_read_both_ways_are_reported_ambiguous_with_examples() -> None:
    guess = detect_date_format(["01-02-2024", "03-04-2024", "01-02-2024"])

    assert guess is not None
    assert guess.ambiguous
    assert guess.date_format == "%d-%m-%Y"
    assert guess.evidence == (
        "AMBIGUOUS: every value reads as %d-%m-%Y and as %m-%d-%Y "
        "(e.g. 01-02-2024, 03-04-2024); day first chosen"
    )


def test_iso_dates_and_date_times() -> None:
    date = detect_date_format(["2024-03-01", "1999-12-31"])
    moment = detect_date_format(["2024-03-01T09:30:00+01:00", "2024-07-01 14:30:00", "2024-01-15"])

    assert date is not None
    assert (date.value_type, date.date_format) == ("date", "iso8601")
    assert moment is not None
    assert (moment.value_type, moment.date_format) == ("datetime", "iso8601")


def test_strftime_date_times_with_and_without_seconds() -> None:
    minutes = detect_date_format(["01/07/2024 14:30", "15/01/2024 00:15"])
    seconds = detect_date_format(["2024.07.01 14:30:05"])

    assert minutes is not None
    assert (minutes.value_type, minutes.date_format) == ("datetime", "%d/%m/%Y %H:%M")
    assert seconds is not None
    assert seconds.date_format == "%Y.%m.%d %H:%M:%S"


def test_two_digit_years_and_non_dates() -> None:
    short = detect_date_format(["31.12.99", "01.01.00"])

    assert short is not None
    assert short.date_format == "%d.%m.%y"
    assert detect_date_format(["31-02-2024"]) is None
    assert detect_date_format(["soon"]) is None


def test_an_impossible_date_keeps_the_column_text_and_names_it() -> None:
    result = sniffed(
        "customer_id;birth\nC1;17-05-1985\nC2;02-11-1990\nC3;29-02-1992\nC4;31-12-1979\n"
        "C5;31-02-1988\n"
    )

    birth = column(result, "birth")
    assert birth.value_type == "text"
    assert birth.notes == ["4 of 5 values are dates (%d-%m-%Y), not '31-02-1988': kept as text"]


def test_the_goal_date_format_is_the_most_used_one() -> None:
    result = sniffed(
        "customer_id,birth,joined,seen\n"
        "C1,17-05-1985,01-06-2020,2024-03-01T09:30:00\n"
        "C2,02-11-1990,23-07-2021,2024-03-02T10:00:00\n"
    )

    assert result.date_format.value == "%d-%m-%Y"
    assert result.date_format.evidence == "used by birth, joined"
    assert column(result, "seen").date_format == "iso8601"
    assert column(result, "seen").value_type == "datetime"


def test_records_with_another_field_count_are_counted_not_typed() -> None:
    result = sniffed("customer_id,points\nC1,1\nC2,2,extra\nC3,3\nC4\n")

    assert result.ragged == [2, 4]
    assert result.records == 4
    assert column(result, "points").value_type == "number"


# ---------------------------------------------------------------- what the import will trip over


def test_binary_or_empty_samples_are_refused_naming_the_file() -> None:
    with pytest.raises(FormatError, match=r"^in\.bin:2: contains NUL characters as latin-1"):
        sniff(b"ab\n\x00\x01\x02\xff", truncated=False, name="in.bin")
    with pytest.raises(FormatError, match=r"^in\.csv: no records"):
        sniff(b"\n\n\n", truncated=False, name="in.csv")
    with pytest.raises(FormatError, match=r"^in\.csv: no line ends within the first 1,000 bytes"):
        sniff(b"x" * 1000, truncated=True, name="in.csv")


def test_an_unclosed_quote_and_an_excel_separator_line_are_warned_about() -> None:
    unclosed = sniffed('customer_id,name\nC1,"Ann\nC2,Bob\n')
    excel = sniffed("sep=;\ncustomer_id;name\nC1;Ann\n")

    assert unclosed.warnings == [
        'a field quoted with " on line 2 is never closed: the import fails such a file'
    ]
    assert excel.warnings[0].startswith("the file starts with Excel's 'sep=;' line")


def test_a_sample_cut_inside_an_open_quote_is_no_warning() -> None:
    assert sniffed('customer_id,name\nC1,Ann\nC2,"Bob', truncated=True).warnings == []
