"""Import profiles: which files a goal takes, their states, and when a file is imported again.

Listing and reading go over HTTP to the moto server; the ledger lives in a
real SQLite file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from helpers import BUCKET, CONNECTION, GOAL, Harness, csv_bytes, import_goal

from connector.config import ImportProfilesGoal
from connector.imports import pipeline as importing
from connector.imports.files import FileState, ScannedFile, goal_fingerprint, scan_files
from connector.sources import S3Client
from connector.storage import LedgerEntry, RunStatus

SUM_POINTS = [{"column": "points", "property": "points", "rule": "sum"}]


def the_goal(harness: Harness, name: str = GOAL) -> ImportProfilesGoal:
    goal = harness.workspace().connection(CONNECTION).goal(name)
    assert isinstance(goal, ImportProfilesGoal)
    return goal


async def scan(harness: Harness, name: str = GOAL) -> dict[str, ScannedFile]:
    """What `connector scan` sees: the goal's files with their states, by key."""
    goal = the_goal(harness, name)
    connection = harness.workspace().connection(CONNECTION)
    ledger = harness.store.ledger(CONNECTION, goal.name)
    fingerprint = goal_fingerprint(goal, connection.objectives)
    return {f.key: f for f in await scan_files(await harness.s3(), goal, ledger, fingerprint)}


def states(scanned: Mapping[str, ScannedFile]) -> dict[str, str]:
    return {key: str(f.state) for key, f in scanned.items()}


# ---------------------------------------------------------------- listing


async def test_listing_pages_past_1000_keys_and_a_run_imports_every_file(
    harness: Harness,
) -> None:
    count = 1050
    harness.write_connection(import_goal(mappings=SUM_POINTS))
    await harness.put(
        {f"in/part-{i:04d}.csv": csv_bytes("customer_id,points", f"C{i},{i}") for i in range(count)}
    )

    scanned = await scan(harness)

    assert len(scanned) == count
    assert set(states(scanned).values()) == {"new"}

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert outcome.record.counts.files == count
    assert len(harness.store.ledger(CONNECTION, GOAL)) == count
    assert harness.store.count_profiles() == count
    assert harness.properties("C1049")["points"] == ["1049"]


async def test_wildcards_and_regex_patterns_choose_the_files(harness: Harness) -> None:
    keys = [
        "in/a.csv",
        "in/b.txt",
        "in/2026-11-01.csv",
        "in/2026-11-01.csv.done",
        "in/sub/c.csv",
        "in/sub/deeper/d.csv",
        "other/e.csv",
    ]
    await harness.put({key: csv_bytes("customer_id,email", f"{key},x@x.org") for key in keys})
    harness.write_connection(
        import_goal("stars", files=["*.csv"]),
        import_goal("globstar", files=["**/*.csv"]),
        import_goal("regex", files=[r"regex:\d{4}-\d{2}-\d{2}\.csv"]),
        import_goal("several", files=["a.*", "sub/?.csv"]),
        import_goal("classes", files=["[a-b].*", "regex:sub/.*/[d-z]\\.csv"]),
    )

    chosen = {name: sorted(await scan(harness, name)) for name in ("stars", "globstar", "regex")}
    chosen["several"] = sorted(await scan(harness, "several"))
    chosen["classes"] = sorted(await scan(harness, "classes"))

    assert chosen == {
        "stars": ["in/2026-11-01.csv", "in/a.csv"],
        "globstar": ["in/2026-11-01.csv", "in/a.csv", "in/sub/c.csv", "in/sub/deeper/d.csv"],
        "regex": ["in/2026-11-01.csv"],
        "several": ["in/a.csv", "in/sub/c.csv"],
        "classes": ["in/a.csv", "in/b.txt", "in/sub/deeper/d.csv"],
    }

    outcome = await harness.run(goal="regex")

    assert outcome.record.counts.files == 1
    assert set(harness.store.ledger(CONNECTION, "regex")) == {"in/2026-11-01.csv"}
    assert sorted(harness.by_customer()) == ["in/2026-11-01.csv"]


async def test_states_go_from_new_to_imported_and_to_changed_with_new_content(
    harness: Harness,
) -> None:
    harness.write_connection(import_goal(mappings=SUM_POINTS))
    await harness.put(
        {
            "in/a.csv": csv_bytes("customer_id,points", "C1,1"),
            "in/b.csv": csv_bytes("customer_id,points", "C2,2"),
        }
    )
    assert states(await scan(harness)) == {"in/a.csv": "new", "in/b.csv": "new"}

    await harness.run()
    scanned = await scan(harness)
    assert states(scanned) == {"in/a.csv": "imported", "in/b.csv": "imported"}
    assert scanned["in/a.csv"].reason.startswith("imported ")

    await harness.put(
        {
            "in/a.csv": csv_bytes("customer_id,points", "C1,10"),
            "in/c.csv": csv_bytes("customer_id,points", "C3,3"),
        }
    )
    scanned = await scan(harness)
    assert states(scanned) == {"in/a.csv": "changed", "in/b.csv": "imported", "in/c.csv": "new"}
    assert scanned["in/a.csv"].reason == "content changed since it was imported"


# ---------------------------------------------------------------- the skip rule


async def test_a_second_run_skips_imported_files_and_applies_nothing_twice(
    harness: Harness,
) -> None:
    harness.write_connection(import_goal(mappings=SUM_POINTS))
    await harness.put({"in/a.csv": csv_bytes("customer_id,points", "C1,12.50", "C2,1")})
    await harness.run()

    again = await harness.run()

    assert again.record.status is RunStatus.SUCCESS
    assert (again.record.counts.files, again.record.counts.files_skipped) == (0, 1)
    assert again.record.counts.rows_read == 0
    assert harness.properties("C1")["points"] == ["12.50"]


async def test_new_content_under_the_same_key_is_imported_again(harness: Harness) -> None:
    harness.write_connection(import_goal(mappings=SUM_POINTS))
    await harness.put({"in/a.csv": csv_bytes("customer_id,points", "C1,12.50")})
    await harness.run()
    etag = harness.store.ledger(CONNECTION, GOAL)["in/a.csv"].etag
    await harness.put({"in/a.csv": csv_bytes("customer_id,points", "C1,3.10")})

    again = await harness.run()

    assert again.record.counts.files == 1
    assert harness.properties("C1")["points"] == ["15.60"]
    assert harness.store.ledger(CONNECTION, GOAL)["in/a.csv"].etag != etag


async def test_a_changed_goal_configuration_imports_the_files_again(harness: Harness) -> None:
    harness.write_connection(import_goal())
    await harness.put({"in/a.csv": csv_bytes("customer_id,email,city", "C1,a@x.org,Delft")})
    await harness.run()
    assert "city" not in harness.properties("C1")

    harness.write_connection(
        import_goal(
            mappings=[
                {"column": "email", "property": "email"},
                {"column": "city", "property": "city"},
            ]
        )
    )
    scanned = await scan(harness)
    assert states(scanned) == {"in/a.csv": "changed"}
    assert scanned["in/a.csv"].reason == "the goal's configuration changed since it was imported"

    again = await harness.run()

    assert again.record.counts.files == 1
    assert harness.properties("C1")["city"] == ["Delft"]


async def test_toggling_enabled_widening_file_patterns_or_after_import_imports_nothing_again(
    harness: Harness,
) -> None:
    harness.write_connection(import_goal(mappings=SUM_POINTS))
    await harness.put({"in/a.csv": csv_bytes("customer_id,points", "C1,5")})
    await harness.run()

    harness.write_connection(import_goal(mappings=SUM_POINTS, enabled=False))
    assert states(await scan(harness)) == {"in/a.csv": "imported"}
    disabled = await harness.run()
    assert disabled.record.counts.files_skipped == 0  # a disabled goal does not run at all
    named = await harness.run(goal=GOAL)  # ...unless named
    assert (named.record.counts.files, named.record.counts.files_skipped) == (0, 1)

    harness.write_connection(import_goal(mappings=SUM_POINTS, enabled=True))
    assert states(await scan(harness)) == {"in/a.csv": "imported"}

    # which files a goal takes, and what becomes of them, do not change how rows apply
    harness.write_connection(import_goal(mappings=SUM_POINTS, files=["*.csv", "*.csv.gz"]))
    assert states(await scan(harness)) == {"in/a.csv": "imported"}
    harness.write_connection(import_goal(mappings=SUM_POINTS, after_import="done_suffix"))
    assert states(await scan(harness)) == {"in/a.csv": "imported"}
    last = await harness.run()

    assert last.record.counts.files == 0
    assert harness.properties("C1")["points"] == ["5"]


# ---------------------------------------------------------------- changed while read


async def test_a_file_replaced_after_listing_is_not_applied_and_is_imported_next_run(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.write_connection(import_goal(mappings=SUM_POINTS))
    await harness.put(
        {
            "in/a.csv": csv_bytes("customer_id,points", "C1,1", "C2,1"),
            "in/b.csv": csv_bytes("customer_id,points", "C3,1"),
        }
    )
    real_scan = importing.scan_files

    async def scan_then_replace(
        s3: S3Client, goal: Any, ledger: Mapping[str, LedgerEntry], fingerprint: str, *more: Any
    ) -> list[ScannedFile]:
        listed = await real_scan(s3, goal, ledger, fingerprint, *more)
        await s3.put_object(BUCKET, "in/a.csv", csv_bytes("customer_id,points", "C1,100"))
        return listed  # the listing now holds a stale ETag for in/a.csv

    monkeypatch.setattr(importing, "scan_files", scan_then_replace)

    outcome = await harness.run()

    record = outcome.record
    # a writer racing the reader is normal: the file is skipped, not a failure to mail about
    assert record.status is RunStatus.SUCCESS
    assert record.error is None
    assert record.counts.files_skipped == 1
    assert record.counts.files == 1  # in/b.csv went on
    assert set(harness.store.ledger(CONNECTION, GOAL)) == {"in/b.csv"}
    assert sorted(harness.by_customer()) == ["C3"]  # nothing of either version of in/a.csv

    monkeypatch.setattr(importing, "scan_files", real_scan)
    assert states(await scan(harness))["in/a.csv"] == str(FileState.NEW)

    again = await harness.run()

    assert again.record.status is RunStatus.SUCCESS
    assert again.record.counts.files == 1
    assert harness.properties("C1")["points"] == ["100"]
    assert sorted(harness.by_customer()) == ["C1", "C3"]
