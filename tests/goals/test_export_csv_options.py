"""Export CSV options: `escape_char`, `quote_all`, and `null_value` apart from `empty_value`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from helpers import BUCKET, Harness

from connector.config.formats import ExportFormat, ImportFormat
from connector.formats.reader import DelimitedReader, Row, iter_decoded
from connector.formats.writer import DelimitedWriter
from connector.storage import Profile, RunStatus

TRICKY = [
    ["1", 'say "hi"', "C:\\temp\\"],
    ["2", "it's", "a,b"],
    ["3", "line\nbreak", "\\\"'"],
    ["4", "", "plain"],
]


def written(fmt: ExportFormat, *rows: Sequence[str | None]) -> str:
    writer = DelimitedWriter(fmt)
    writer.write_rows(rows)
    return writer.finish().decode(fmt.encoding)


def read_back(data: str, fmt: ExportFormat) -> list[list[str]]:
    import_fmt = ImportFormat(
        header=False,
        columns=["id", "a", "b"],
        field_separator=fmt.field_separator,
        quote_char=fmt.quote_char,
        escape_char=fmt.escape_char,
    )
    reader = DelimitedReader(
        iter_decoded([data.encode()], encoding="utf-8", file="x"), import_fmt, file="x"
    )
    records = list(reader)
    assert all(isinstance(record, Row) for record in records), records
    return [record.values for record in records if isinstance(record, Row)]


# -- escape_char and quote_all ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("escape_char", "row", "line"),
    [
        (
            "\\",
            ['say "hi"', "C:\\temp", "plain", "a,b"],
            '"say \\"hi\\"","C:\\\\temp",plain,"a,b"\n',
        ),
        ("'", ["it's", 'say "hi"', "plain"], '"it\'\'s","say \'"hi\'"",plain\n'),
    ],
    ids=["backslash", "apostrophe"],
)
def test_escape_char_escapes_quotes_and_itself_inside_a_quoted_field(
    escape_char: str, row: list[str], line: str
) -> None:
    fmt = ExportFormat(escape_char=escape_char, formula_guard=False)

    assert written(fmt, row) == line


def test_without_escape_char_quotes_are_doubled_as_before() -> None:
    assert written(ExportFormat(), ['say "hi"', "C:\\temp"]) == '"say ""hi""",C:\\temp\n'


def test_quote_all_quotes_every_field_and_still_escapes_with_the_escape_char() -> None:
    fmt = ExportFormat(escape_char="\\", quote_all=True)

    assert written(fmt, ["1", 'a"b', ""]) == '"1","a\\"b",""\n'


@pytest.mark.parametrize(
    "fmt",
    [
        ExportFormat(escape_char="\\", formula_guard=False),
        ExportFormat(escape_char="'", formula_guard=False),
        ExportFormat(escape_char="\\", quote_all=True, formula_guard=False),
        ExportFormat(escape_char="'", field_separator=";", formula_guard=False),
    ],
    ids=["backslash", "apostrophe", "backslash-quote-all", "apostrophe-semicolon"],
)
def test_an_escaped_file_reads_back_with_the_same_escape_char(fmt: ExportFormat) -> None:
    assert read_back(written(fmt, *TRICKY), fmt) == TRICKY


# -- null and empty ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("null_value", "empty_value", "quote_all", "line"),
    [
        ("", "", False, ",,x\n"),
        ('""', "", False, '"",,x\n'),
        ("", '""', False, ',"",x\n'),
        ("null", '""', False, 'null,"",x\n'),
        ('""', "null", False, '"",null,x\n'),
        ("NULL", "", False, "NULL,,x\n"),
        ("", "", True, '"","","x"\n'),
        ("null", '""', True, '"null","","x"\n'),
    ],
)
def test_a_missing_value_is_written_as_null_value_and_an_empty_one_as_empty_value(
    null_value: str, empty_value: str, quote_all: bool, line: str
) -> None:
    fmt = ExportFormat(null_value=null_value, empty_value=empty_value, quote_all=quote_all)

    assert written(fmt, [None, "", "x"]) == line


def test_a_single_column_row_without_a_value_is_a_quoted_empty_field_not_a_blank_line() -> None:
    assert written(ExportFormat(), [None], [""], ["x"]) == '""\n""\nx\n'


# -- end to end ----------------------------------------------------------------------------------


def export_goal(fmt: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": "out",
        "destination": {"bucket": BUCKET, "directory": "out", "file_name": "profiles.csv"},
        "format": fmt,
        "columns": [
            {"header": "id", "value": "profile_id"},
            {"header": "email", "property": "email"},
            {"header": "nickname", "property": "nickname"},
            {"header": "note", "property": "note"},
        ],
    }


async def test_an_export_tells_absent_from_empty_and_escapes_quotes_as_configured(
    harness: Harness,
) -> None:
    harness.write_connection(
        export_goal({"null_value": "null", "empty_value": '""', "escape_char": "\\"})
    )
    with harness.store.transaction() as tx:
        tx.save_profiles(
            [
                Profile("p1", {"email": ["a@x"], "nickname": [""], "note": ['say "hi"']}),
                Profile("p2", {"email": ["b@x"], "nickname": []}),
            ]
        )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    s3 = await harness.s3()
    body = b"".join([chunk async for chunk in s3.iter_object(BUCKET, "out/profiles.csv")])
    assert body.decode() == ('id,email,nickname,note\np1,a@x,"","say \\"hi\\""\np2,b@x,null,null\n')


def test_empty_value_defaults_to_an_empty_field_so_existing_goals_write_the_same() -> None:
    fmt = ExportFormat()

    assert (fmt.null_value, fmt.empty_value) == ("", "")
    assert written(fmt, ["1", "", None]) == "1,,\n"
