"""`connector scan`, `preview`, `run` and `history --run`, as real subprocesses without a terminal.

Each command runs as `python -m connector ...` with its output piped (so not
a tty), against the session's moto server and a SQLite file in tmp_path.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import CONNECTION, GOAL, Harness, csv_bytes, import_goal

from connector.storage import Profile

MAPPINGS = [
    {"column": "email", "property": "email", "rule": "set"},
    {"column": "points", "property": "loyalty_points", "rule": "sum", "type": "number"},
]
FORMAT = {"field_separator": ";", "decimal_separator": ","}
GOOD_AND_BAD = csv_bytes(
    "customer_id;email;points",
    "C1;a@x.org;12,50",
    "C2;b@x.org;abc",
    "C3;c@x.org;3,10",
)


@pytest.fixture
async def harness(tmp_path: Path, moto_endpoint: str, reset_moto: None) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, moto_endpoint)
    await h.bucket()
    h.write_connection(import_goal(format=FORMAT, mappings=MAPPINGS))
    yield h
    await h.aclose()


def summary_line(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith("run ")]
    return line


# ---------------------------------------------------------------- scan


async def test_scan_lists_each_file_with_size_last_modified_and_state(harness: Harness) -> None:
    await harness.put(
        {
            "in/a.csv": csv_bytes("customer_id;email;points", "C1;a@x.org;1"),
            "in/c.csv": csv_bytes("customer_id;email;points", "C3;c@x.org;3"),
            "in/notes.txt": b"not a goal file",
        }
    )
    await harness.run()
    await harness.put(
        {
            "in/b.csv": csv_bytes("customer_id;email;points", "C2;b@x.org;2"),
            "in/c.csv": csv_bytes("customer_id;email;points", "C3;c@x.org;30"),
        }
    )
    listed = await harness.listed()

    result = harness.cli("scan", CONNECTION, GOAL)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "SIZE", "LAST", "MODIFIED", "(UTC)", "STATE", "WHY"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert sorted(rows) == ["in/a.csv", "in/b.csv", "in/c.csv"]
    for key, expected_state in (
        ("in/a.csv", "imported"),
        ("in/b.csv", "new"),
        ("in/c.csv", "changed"),
    ):
        obj = listed[key]
        _, size, day, clock, state, *_why = rows[key]
        assert int(size) == obj.size
        assert f"{day} {clock}" == obj.last_modified.strftime("%Y-%m-%d %H:%M:%S")
        assert state == expected_state
    assert lines[-1] == "3 file(s): 1 new, 1 changed, 1 imported"


# ---------------------------------------------------------------- preview


async def test_preview_shows_how_each_field_parses_and_maps_and_writes_nothing(
    harness: Harness,
) -> None:
    harness.store.ensure_unique_properties(["customer_id"])
    with harness.store.transaction() as tx:
        tx.save_profiles([Profile("p-one", {"customer_id": ["C1"]})])
    await harness.put({"in/a.csv": GOOD_AND_BAD, "in/readme.txt": b"not matched"})

    first = harness.cli("preview", CONNECTION, GOAL)
    two_rows = harness.cli("preview", CONNECTION, GOAL, "--file", "in/a.csv", "--rows", "2")

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:2] == [
        "file in/a.csv",
        "columns: customer_id, email, points",
    ]
    assert "line 2: C1 -> existing profile p-one" in first.stdout
    assert "  email = 'a@x.org' -> email (set) ['a@x.org']" in first.stdout
    assert "  points = '12,50' -> loyalty_points (sum) ['12.50']" in first.stdout
    assert re.search(
        r"^line 3: .*rejected \(column points\): 'abc' is not a number", first.stdout, re.M
    )
    assert "line 4: C3 -> new profile" in first.stdout
    assert "  points = '3,10' -> loyalty_points (sum) ['3.10']" in first.stdout

    assert two_rows.returncode == 0, two_rows.stderr
    assert "line 2: C1" in two_rows.stdout
    assert "line 3:" in two_rows.stdout
    assert "line 4:" not in two_rows.stdout

    assert harness.store.count_profiles() == 1
    assert harness.store.ledger(CONNECTION, GOAL) == {}
    assert harness.store.list_runs() == []


async def test_preview_says_which_rows_consent_would_skip_and_which_rows_delete(
    harness: Harness,
) -> None:
    consent_and_delete = import_goal(
        mappings=[
            {"column": "email", "property": "email", "rule": "set"},
            {"column": "consent", "property": "consented_objectives", "rule": "add"},
        ],
        delete_column="gone",
    )
    harness.write_connection(consent_and_delete, objectives=["marketing"])
    harness.store.ensure_unique_properties(["customer_id"])
    with harness.store.transaction() as tx:
        tx.save_profiles(
            [
                Profile("p-one", {"customer_id": ["C1"], "consented_objectives": ["marketing"]}),
                Profile("p-two", {"customer_id": ["C2"]}),
            ]
        )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,email,consent,gone",
                "C1,a@x.org,,",  # consented before: applied
                "C2,b@x.org,,",  # never consented: skipped
                "C3,c@x.org,marketing,",  # consents in this row: applied
                "C4,d@x.org,,",  # new, without consent: skipped
                "C2,,,yes",  # erasure needs no consent
            )
        }
    )

    shown = harness.cli("preview", CONNECTION, GOAL)

    assert shown.returncode == 0, shown.stderr
    skipped = " (row skipped: no consent to marketing)"
    assert "line 2: C1 -> existing profile p-one\n" in shown.stdout
    assert f"line 3: C2 -> existing profile p-two{skipped}" in shown.stdout
    assert "line 4: C3 -> new profile\n" in shown.stdout
    assert f"line 5: C4 -> new profile{skipped}" in shown.stdout
    assert "line 6: C2 -> delete profile p-two" in shown.stdout
    assert harness.store.count_profiles() == 2


# ---------------------------------------------------------------- run and history


async def test_run_with_rejected_rows_exits_3_and_history_shows_file_line_and_column(
    harness: Harness,
) -> None:
    await harness.put({"in/a.csv": GOOD_AND_BAD})

    result = harness.cli("run", CONNECTION)

    assert result.returncode == 3, result.stdout + result.stderr
    assert summary_line(result.stdout).startswith(
        "run 1 partial: 1 file(s), 3 rows read, 2 applied, 1 rejected, 0 skipped; "
        "profiles 2 created, 0 updated"
    )
    assert "  rejected in/a.csv:3 column 'points': 'abc' is not a number" in result.stdout

    history = harness.cli("history", "--run", "1")

    assert history.returncode == 0, history.stderr
    assert "partial" in history.stdout
    assert "  rejected in/a.csv:3 column 'points': 'abc' is not a number" in history.stdout
    [reject] = harness.store.run_rejects(1)
    assert (reject.file, reject.line, reject.column) == ("in/a.csv", 3, "points")
    assert harness.properties("C1")["loyalty_points"] == ["12.50"]


async def test_run_without_a_terminal_logs_plain_lines_prints_the_summary_and_exits_0(
    harness: Harness,
) -> None:
    await harness.put({"in/a.csv": csv_bytes("customer_id;email;points", "C1;a@x.org;1")})

    result = harness.cli("run", CONNECTION, CONNECTOR_LOG_LEVEL="info")

    assert result.returncode == 0, result.stdout + result.stderr
    assert summary_line(result.stdout).startswith(
        "run 1 success: 1 file(s), 1 rows read, 1 applied, 0 rejected"
    )
    assert "\x1b[" not in result.stdout + result.stderr  # no bar, no colours
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert "file imported" in [event["event"] for event in events]


async def test_run_exits_1_when_a_file_cannot_be_read_and_names_it(harness: Harness) -> None:
    await harness.put({"in/a.csv": csv_bytes("id;email;points", "C1;a@x.org;1")})

    result = harness.cli("run", CONNECTION)

    assert result.returncode == 1, result.stdout + result.stderr
    assert summary_line(result.stdout).startswith("run 1 failure: 0 file(s)")
    assert "error: in/a.csv:1: the header has no column 'customer_id'" in result.stdout
    assert harness.store.count_profiles() == 0


async def test_dry_run_reports_counts_and_writes_nothing(harness: Harness) -> None:
    await harness.put({"in/a.csv": GOOD_AND_BAD})

    result = harness.cli("run", CONNECTION, "--dry-run")

    assert result.returncode == 3, result.stdout + result.stderr
    assert summary_line(result.stdout).startswith(
        "run 1 partial (dry run: nothing written): 1 file(s), 3 rows read, 2 applied, "
        "1 rejected, 0 skipped; profiles 2 created"
    )
    assert harness.store.count_profiles() == 0
    assert harness.store.ledger(CONNECTION, GOAL) == {}
    [run] = harness.store.list_runs()
    assert run.dry_run
    assert (run.counts.rows_read, run.counts.rows_applied) == (3, 2)


async def test_preview_of_a_comma_file_read_with_semicolons_names_the_separator(
    harness: Harness,
) -> None:
    await harness.put({"in/a.csv": csv_bytes("customer_id,email,points", "C1,a@x.org,1")})

    shown = harness.cli("preview", CONNECTION, GOAL)

    assert shown.returncode != 0
    assert (
        "in/a.csv:1: the header has one column, 'customer_id,email,points', which contains ',': "
        "the file seems to be separated by ',', not ';' (set format.field_separator: \",\" to "
        "read its 3 columns)"
    ) in shown.stdout + shown.stderr
    assert "has no column" not in shown.stdout + shown.stderr
    assert "Traceback" not in shown.stderr
