"""Import profiles: reading files (plain, gzip, encodings) and parsing them by the goal's format.

Files go to the moto server over HTTP; the run reads them back as a stream
and applies them to a real SQLite store.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import CONNECTION, GOAL, Harness, csv_bytes, gzipped, import_goal

from connector.storage import RowReject, RunStatus


def mapping(
    column: str, prop: str | None = None, rule: str = "set", **extra: Any
) -> dict[str, Any]:
    return {"column": column, "property": prop or column, "rule": rule, **extra}


IN_THREAD, IN_CHILD = 16 << 20, 0
"""`parse_in_child_bytes` for the two parse stages: small files in the thread, large in a child."""
BOTH_PARSE_STAGES = pytest.mark.parametrize(
    "parse_in_child_bytes", [IN_THREAD, IN_CHILD], ids=["parsed-in-thread", "parsed-in-child"]
)


def rejects_of(harness: Harness, run_id: int) -> list[tuple[str, int, str | None]]:
    return [(r.file, r.line, r.column) for r in harness.store.run_rejects(run_id)]


# ---------------------------------------------------------------- reading


async def test_gzip_is_recognised_by_its_magic_bytes_not_the_key_name(harness: Harness) -> None:
    harness.write_connection(import_goal(files=["*.csv", "*.gz"]))
    await harness.put(
        {
            "in/plain.csv": csv_bytes("customer_id,email", "C1,plain@x.org"),
            "in/misnamed.csv": gzipped(csv_bytes("customer_id,email", "C2,misnamed@x.org")),
            "in/packed.csv.gz": gzipped(csv_bytes("customer_id,email", "C3,packed@x.org")),
            "in/not-packed.gz": csv_bytes("customer_id,email", "C4,not-packed@x.org"),
        }
    )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert outcome.record.counts.files == 4
    assert {key: props["email"] for key, props in harness.by_customer().items()} == {
        "C1": ["plain@x.org"],
        "C2": ["misnamed@x.org"],
        "C3": ["packed@x.org"],
        "C4": ["not-packed@x.org"],
    }


@pytest.mark.parametrize(
    ("packed", "parse_in_child_bytes"),
    [(False, IN_THREAD), (True, IN_THREAD), (True, IN_CHILD)],
    ids=["plain", "gzip", "gzip-parsed-in-child"],
)
async def test_a_file_of_several_chunks_streams_with_characters_split_across_chunks(
    harness: Harness, packed: bool, parse_in_child_bytes: int
) -> None:
    # ~2.4 MiB of three-byte characters: S3 chunks (1 MiB) cut characters and lines
    rows = 3000
    notes = {f"C{i}": f"{i}:" + "€ü" * (250 + i % 7) for i in range(rows)}
    data = csv_bytes("customer_id,note", *(f"{key},{note}" for key, note in notes.items()))
    assert len(data) > 2 << 20
    harness.write_connection(import_goal(mappings=[mapping("note")]))
    await harness.put({"in/big.csv": gzipped(data) if packed else data})

    outcome = await harness.run(parse_in_child_bytes=parse_in_child_bytes)

    assert outcome.record.status is RunStatus.SUCCESS
    assert outcome.record.counts.rows_applied == rows
    assert {key: props["note"] for key, props in harness.by_customer().items()} == {
        key: [note] for key, note in notes.items()
    }


async def test_utf8_is_read_with_and_without_a_byte_order_mark(harness: Harness) -> None:
    harness.write_connection(import_goal(mappings=[mapping("name")]))
    await harness.put(
        {
            "in/bom.csv": b"\xef\xbb\xbf" + csv_bytes("customer_id,name", "C1,Zoë"),
            "in/plain.csv": csv_bytes("customer_id,name", "C2,Łukasz"),
        }
    )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert harness.properties("C1")["name"] == ["Zoë"]
    assert harness.properties("C2")["name"] == ["Łukasz"]


async def test_latin1_is_read_when_format_encoding_says_so(harness: Harness) -> None:
    harness.write_connection(
        import_goal(format={"encoding": "latin-1"}, mappings=[mapping("name")])
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,name", "C1,Zoë Müller", "C2,Ångström", encoding="latin-1"
            )
        }
    )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert harness.properties("C1")["name"] == ["Zoë Müller"]
    assert harness.properties("C2")["name"] == ["Ångström"]


@BOTH_PARSE_STAGES
async def test_latin1_read_as_utf8_fails_the_file_naming_the_line_and_nothing_is_applied(
    harness: Harness, parse_in_child_bytes: int
) -> None:
    harness.write_connection(import_goal(mappings=[mapping("name")]))
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,name", "C1,Anna", "C2,Zoë", "C3,Carla", encoding="latin-1"
            )
        }
    )

    outcome = await harness.run(parse_in_child_bytes=parse_in_child_bytes)

    assert outcome.record.status is RunStatus.FAILURE
    assert outcome.record.error is not None
    assert "in/a.csv:3" in outcome.record.error
    assert "format.encoding" in outcome.record.error
    assert harness.store.count_profiles() == 0
    assert harness.store.ledger(CONNECTION, GOAL) == {}


@BOTH_PARSE_STAGES
@pytest.mark.parametrize(
    ("separator", "header", "found", "spelled"),
    [
        (";", "customer_id,name,city", ",", '","'),
        (",", "customer_id;name;city", ";", '";"'),
        (",", "customer_id\tname\tcity", "\t", '"\\t"'),
    ],
    ids=["comma-read-as-semicolon", "semicolon-read-as-comma", "tab-read-as-comma"],
)
async def test_a_wrong_field_separator_is_named_with_the_one_that_splits_the_header(
    harness: Harness,
    parse_in_child_bytes: int,
    separator: str,
    header: str,
    found: str,
    spelled: str,
) -> None:
    harness.write_connection(
        import_goal(format={"field_separator": separator}, mappings=[mapping("name")])
    )
    await harness.put({"in/a.csv": csv_bytes(header, header.replace("customer_id", "C1"))})

    outcome = await harness.run(parse_in_child_bytes=parse_in_child_bytes)

    assert outcome.record.status is RunStatus.FAILURE
    assert outcome.record.error is not None
    assert (
        f"in/a.csv:1: the header has one column, {header!r}, which contains {found!r}: the "
        f"file seems to be separated by {found!r}, not {separator!r} (set "
        f"format.field_separator: {spelled} to read its 3 columns)"
    ) in outcome.record.error
    assert harness.store.count_profiles() == 0


# ---------------------------------------------------------------- parsing


@BOTH_PARSE_STAGES
async def test_quoted_fields_hold_separators_quotes_and_newlines_and_later_lines_stay_right(
    harness: Harness, parse_in_child_bytes: int
) -> None:
    harness.write_connection(
        import_goal(
            format={"field_separator": ";", "quote_char": "'"},
            mappings=[mapping("name"), mapping("note"), mapping("points", rule="sum")],
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id;name;note;points",
                "C1;'Dirk; Jr.';'he said ''hi''';1",  # line 2
                "C2;'two",  # line 3: a record over three lines
                "line';'a \"double\"",
                "quote';2",
                "C3;Eve;ok;abc",  # line 6
                "C4;Fay;'';3",  # line 7
            )
        }
    )

    outcome = await harness.run(parse_in_child_bytes=parse_in_child_bytes)

    assert outcome.record.status is RunStatus.PARTIAL
    assert rejects_of(harness, outcome.record.id) == [("in/a.csv", 6, "points")]
    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "name": ["Dirk; Jr."],
        "note": ["he said 'hi'"],
        "points": ["1"],
    }
    assert harness.properties("C2")["name"] == ["two\nline"]
    assert harness.properties("C2")["note"] == ['a "double"\nquote']
    assert "note" not in harness.properties("C4")


async def test_tab_separated_crlf_file_with_a_quoted_line_break(harness: Harness) -> None:
    harness.write_connection(
        import_goal(
            format={"field_separator": "\\t"},
            mappings=[mapping("name"), mapping("points", rule="sum")],
        )
    )
    await harness.put(
        {
            "in/a.tsv.csv": csv_bytes(
                "customer_id\tname\tpoints",
                "C1\tAnna, Jr.\t1",  # line 2
                'C2\t"Bram\r\nB."\t2',  # lines 3-4
                "C3\tCarla\tthree",  # line 5
                "C4\tDirk\t4",
                newline="\r\n",
            )
        }
    )

    outcome = await harness.run()

    assert rejects_of(harness, outcome.record.id) == [("in/a.tsv.csv", 5, "points")]
    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "name": ["Anna, Jr."],
        "points": ["1"],
    }
    assert harness.properties("C2")["name"] == ["Bram\r\nB."]
    assert harness.properties("C4")["points"] == ["4"]  # no "\r" left on the last column


async def test_ragged_rows_are_rejected_with_their_line_not_guessed(harness: Harness) -> None:
    harness.write_connection(import_goal(mappings=[mapping("email"), mapping("city")]))
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,email,city",
                "C1,a@x.org,Utrecht",
                "C2,b@x.org",  # line 3: a field short
                "C3,c@x.org,Delft,extra",  # line 4: a field too many
                "",  # line 5: blank lines are not rows
                "C4,d@x.org,Gouda",
            )
        }
    )

    outcome = await harness.run()

    record = outcome.record
    assert record.status is RunStatus.PARTIAL
    assert record.counts.rows_applied == 2
    rejects = harness.store.run_rejects(record.id)
    assert rejects == [
        RowReject("in/a.csv", 3, None, "expected 3 fields, found 2"),
        RowReject("in/a.csv", 4, None, "expected 3 fields, found 4"),
    ]
    assert sorted(harness.by_customer()) == ["C1", "C4"]


async def test_decimal_comma_multi_values_strftime_dates_and_booleans_convert(
    harness: Harness,
) -> None:
    harness.write_connection(
        import_goal(
            format={
                "field_separator": ";",
                "decimal_separator": ",",
                "multi_value_separator": "/",
                "date_format": "%d-%m-%Y",
                "timezone": "Europe/Amsterdam",
            },
            mappings=[
                mapping("spent", "total_spent", rule="sum", type="number"),
                mapping("interests", rule="add"),
                mapping("birth", "birth_date", type="date"),
                mapping("vip", type="boolean"),
                mapping("score", type="number"),
            ],
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id;spent;interests;birth;vip;score",
                "C1;1250,50;newsletter/running;17-05-1985;yes;-0,5",
                "C2;310;cycling;2-11-1990;No;7",
                "C3;12,5;;29-02-1992;ja;0",
                "C1;3,10;running/ travel;;;",
                "C4;1;x;31-02-1988;no;1",  # line 6: no such date
                "C5;1;x;01-01-2000;maybe;1",  # line 7: not a boolean
                "C6;1.000,00;x;01-01-2000;no;1",  # line 8: thousands separator
            )
        }
    )

    outcome = await harness.run()

    assert rejects_of(harness, outcome.record.id) == [
        ("in/a.csv", 6, "birth"),
        ("in/a.csv", 7, "vip"),
        ("in/a.csv", 8, "spent"),
    ]
    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "total_spent": ["1253.60"],
        "interests": ["newsletter", "running", "travel"],
        "birth_date": ["1985-05-17"],
        "vip": ["true"],
        "score": ["-0.5"],
    }
    assert harness.properties("C2")["birth_date"] == ["1990-11-02"]
    assert harness.properties("C2")["vip"] == ["false"]
    assert harness.properties("C3")["vip"] == ["true"]
    assert harness.properties("C3")["total_spent"] == ["12.5"]
    assert sorted(harness.by_customer()) == ["C1", "C2", "C3"]


async def test_iso8601_date_times_with_offsets_and_naive_times_in_the_goal_time_zone(
    harness: Harness,
) -> None:
    harness.write_connection(
        import_goal(
            format={"date_format": "iso8601", "timezone": "Europe/Amsterdam"},
            mappings=[
                mapping("seen", "last_seen", type="datetime"),
                mapping("day", type="date"),
            ],
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,seen,day",
                "C1,2024-03-01T09:30:00+01:00,2024-03-01",
                "C2,2024-07-01T14:30:00,2024-03-01T23:30:00-05:00",  # naive: Amsterdam summer
                "C3,2024-01-15T10:00:00Z,2024-01-15T10:00:00Z",
                "C4,yesterday,2024-01-01",
            )
        }
    )

    outcome = await harness.run()

    assert rejects_of(harness, outcome.record.id) == [("in/a.csv", 5, "seen")]
    assert harness.properties("C1")["last_seen"] == ["2024-03-01T08:30:00+00:00"]
    assert harness.properties("C1")["day"] == ["2024-03-01"]
    assert harness.properties("C2")["last_seen"] == ["2024-07-01T12:30:00+00:00"]
    assert harness.properties("C2")["day"] == ["2024-03-02"]  # 05:30 the next day in Amsterdam
    assert harness.properties("C3")["last_seen"] == ["2024-01-15T10:00:00+00:00"]


async def test_strftime_date_times_are_read_in_the_goal_time_zone(harness: Harness) -> None:
    harness.write_connection(
        import_goal(
            format={"date_format": "%d/%m/%Y %H:%M", "timezone": "Europe/Amsterdam"},
            mappings=[mapping("seen", "last_seen", type="datetime")],
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,seen", "C1,01/07/2024 14:30", "C2,15/01/2024 00:15", "C3,2024-01-15"
            )
        }
    )

    outcome = await harness.run()

    assert rejects_of(harness, outcome.record.id) == [("in/a.csv", 4, "seen")]
    assert harness.properties("C1")["last_seen"] == ["2024-07-01T12:30:00+00:00"]
    assert harness.properties("C2")["last_seen"] == ["2024-01-14T23:15:00+00:00"]
