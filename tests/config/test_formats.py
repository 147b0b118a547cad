"""File formats of import and export goals: separators, encodings, time zones, dates, headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from connector.config import ExportProfilesGoal, ImportProfilesGoal

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

# `format:` is on line 6; the lines given to import_goal start on line 7.
IMPORT_GOAL = """\
goals:
  - type: import-profiles
    name: nightly
    source: {bucket: crm-exports}
    match: {column: customer_id}
    format:
"""


def import_goal(*format_lines: str) -> str:
    lines = "".join(f"      {line}\n" for line in format_lines)
    return IMPORT_GOAL + lines + "    map_all_columns: true\n"


def loaded_format(goals: GoalsFolder, *format_lines: str) -> ImportProfilesGoal:
    goals.write("crm.yaml", import_goal(*format_lines))
    goal = goals.load().connection("crm").goals[0]
    assert isinstance(goal, ImportProfilesGoal)
    return goal


@pytest.mark.parametrize(
    ("format_lines", "line", "message"),
    [
        (
            ['field_separator: ";;"'],
            7,
            "goals[0].format.field_separator: must be a single character, got ';;'",
        ),
        (
            ["field_separator: ','", "quote_char: ''"],
            8,
            "goals[0].format.quote_char: must be a single character, got ''",
        ),
        (
            ["multi_value_separator: '||'"],
            7,
            "goals[0].format.multi_value_separator: must be a single character, got '||'",
        ),
        (
            ['decimal_separator: "\\n"'],
            7,
            "goals[0].format.decimal_separator: a line break cannot be a separator",
        ),
        (
            ["encoding: utf-9"],
            7,
            "goals[0].format.encoding: unknown text encoding 'utf-9'",
        ),
        (
            ["timezone: Europe/Amsterdan"],
            7,
            "goals[0].format.timezone: unknown time zone 'Europe/Amsterdan' "
            "(use an IANA name like Europe/Amsterdam)",
        ),
        (
            ["date_format: dd-mm-yyyy"],
            7,
            "goals[0].format.date_format: date_format must be 'iso8601' or a strftime pattern "
            "like '%d-%m-%Y', got 'dd-mm-yyyy'",
        ),
        (
            ['date_format: "%d-%m-%Q"'],
            7,
            "goals[0].format.date_format: date_format '%d-%m-%Q' has unknown directive %Q "
            "(known: %Y %y %m %d %H %M %S %f %b %B %a %A %j %p %I %z and the others of strptime)",
        ),
        (
            ['date_format: "%H:%M"'],
            7,
            "goals[0].format.date_format: date_format '%H:%M' does not say which date it is: "
            "it needs a year (%Y or %y) and a month (%m, %b or %B) or a day of the year (%j)",
        ),
        (
            ['date_format: "%d-%m-%Y %"'],
            7,
            "goals[0].format.date_format: date_format '%d-%m-%Y %' ends with a lone '%' "
            "(write %% for a percent sign)",
        ),
        (
            ['date_format: "%Y-%m-%d %Y"'],
            7,
            "goals[0].format.date_format: date_format '%Y-%m-%d %Y' repeats %Y",
        ),
        (
            ['date_format: "%G-%m-%d"'],
            7,
            "goals[0].format.date_format: date_format '%G-%m-%d' cannot read the dates it "
            "describes (ISO year directive '%G' must be used with the ISO week directive '%V' "
            "and a weekday directive ('%A', '%a', '%w', or '%u').)",
        ),
        (
            ["true_values: [ja, Y]", "false_values: [nee, y]"],
            8,
            "goals[0].format.false_values: 'y' is listed in both true_values and false_values (spellings "
            "are compared ignoring case)",
        ),
    ],
    ids=[
        "field separator two chars",
        "empty quote",
        "multi-value two chars",
        "line break",
        "unknown encoding",
        "unknown timezone",
        "date_format without %",
        "date_format unknown directive",
        "date_format without a date",
        "date_format lone percent",
        "date_format repeated directive",
        "date_format that cannot parse",
        "boolean spelling both ways",
    ],
)
def test_bad_format_value_is_reported_with_the_line_of_its_key(
    goals: GoalsFolder, format_lines: list[str], line: int, message: str
) -> None:
    path = goals.write("crm.yaml", import_goal(*format_lines))
    goals.expect(path, line, message)


@pytest.mark.parametrize(
    ("format_lines", "message"),
    [
        (
            ["header: false"],
            "a file without a header row (header: false) needs `columns: [...]`",
        ),
        (
            ["header: true", "columns: [id, email]"],
            "`columns` is only for files without a header row (header: false)",
        ),
        (
            ["header: false", "columns: [id, email, id]"],
            "duplicate column names: id",
        ),
    ],
    ids=[
        "no header no columns",
        "header and columns",
        "duplicate columns",
    ],
)
def test_inconsistent_format_is_reported_on_the_format_key(
    goals: GoalsFolder, format_lines: list[str], message: str
) -> None:
    path = goals.write("crm.yaml", import_goal(*format_lines))
    goals.expect(path, 6, f"goals[0].format: {message}")


@pytest.mark.parametrize("spelling", ['"\\t"', "'\\t'", "tab", '"\t"'])
def test_tab_is_accepted_as_field_separator_in_every_spelling(
    goals: GoalsFolder, spelling: str
) -> None:
    goal = loaded_format(goals, f"field_separator: {spelling}")
    assert goal.format.field_separator == "\t"


def test_contract_example_format_is_read_as_written(goals: GoalsFolder) -> None:
    goal = loaded_format(
        goals,
        'field_separator: ";"',
        'decimal_separator: ","',
        'multi_value_separator: "|"',
        "quote_char: '\"'",
        "encoding: utf-8",
        'date_format: "%d-%m-%Y"',
        "timezone: Europe/Amsterdam",
    )
    fmt = goal.format
    assert (fmt.field_separator, fmt.decimal_separator, fmt.multi_value_separator) == (
        ";",
        ",",
        "|",
    )
    assert (fmt.quote_char, fmt.encoding, fmt.date_format, fmt.timezone) == (
        '"',
        "utf-8",
        "%d-%m-%Y",
        "Europe/Amsterdam",
    )


def test_headerless_file_with_columns_is_accepted(goals: GoalsFolder) -> None:
    goal = loaded_format(goals, "header: false", "columns: [customer_id, email]")
    assert goal.format.columns == ["customer_id", "email"]


def test_iso8601_date_format_is_accepted_in_any_case(goals: GoalsFolder) -> None:
    assert loaded_format(goals, "date_format: ISO8601").format.date_format == "iso8601"


def test_export_format_rejects_an_unknown_key_with_its_line(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            format:
              field_separator: ","
              null: "NULL"
            columns:
              - {header: id, value: profile_id}
        """,
    )
    goals.expect(path, 7, "unknown key 'null' in goals[0].format")


def test_export_format_options_are_read(goals: GoalsFolder) -> None:
    goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            format: {field_separator: ";", null_value: "NULL", quote_all: true}
            columns:
              - {header: id, value: profile_id}
        """,
    )
    goal = goals.load().connection("crm").goals[0]
    assert isinstance(goal, ExportProfilesGoal)
    assert (goal.format.field_separator, goal.format.null_value, goal.format.quote_all) == (
        ";",
        "NULL",
        True,
    )


@pytest.mark.parametrize(
    ("format_lines", "line", "message"),
    [
        (
            ['field_separator: ","', 'decimal_separator: ","'],
            8,
            "goals[0].format.decimal_separator: decimal_separator and field_separator are both "
            "','; they must differ",
        ),
        (
            ['field_separator: "|"'],
            7,
            "goals[0].format.field_separator: multi_value_separator and field_separator are both "
            "'|'; they must differ",
        ),
        (
            ["field_separator: '\"'"],
            7,
            "goals[0].format.field_separator: quote_char and field_separator are both '\"'; "
            "they must differ",
        ),
        (
            ['multi_value_separator: ","'],
            7,
            "goals[0].format.multi_value_separator: multi_value_separator and field_separator "
            "are both ','; they must differ",
        ),
    ],
    ids=["decimal equals field", "field equals multi-value", "field equals quote", "multi"],
)
def test_separators_that_clash_are_reported_at_the_key_the_file_wrote(
    goals: GoalsFolder, format_lines: list[str], line: int, message: str
) -> None:
    path = goals.write("crm.yaml", import_goal(*format_lines))
    goals.expect(path, line, message)


def test_an_export_date_format_may_use_what_only_strftime_writes(goals: GoalsFolder) -> None:
    """Exports only write dates: glibc's `%-d` is fine there, though strptime cannot read it."""
    goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            format: {date_format: "%-d/%-m/%Y"}
            columns:
              - {header: id, value: profile_id}
        """,
    )
    goal = goals.load().connection("crm").goals[0]
    assert isinstance(goal, ExportProfilesGoal)
    assert goal.format.date_format == "%-d/%-m/%Y"
