"""`on_change`: a corrected file (or a changed goal) applied again on top of its earlier
version (`reapply`, the default) or in its place (`replace`: each file counts once, at its
latest version). Same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest
import structlog
from helpers import CONNECTION, GOAL, Harness, csv_bytes, import_goal

from connector.goals.runner import changed_files_note
from connector.imports.contributions import negate
from connector.imports.files import goal_fingerprint
from connector.storage import Profile, RunCounts, RunStatus

MAPPINGS = [
    {"column": "email", "property": "email", "rule": "set"},
    {"column": "points", "property": "points", "rule": "sum", "type": "number"},
    {"column": "tags", "property": "tags", "rule": "add"},
]
HEADER = "customer_id,email,points,tags"


def goal(on_change: str | None = "replace", **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"mappings": MAPPINGS, "format": {"multi_value_separator": "|"}}
    if on_change is not None:
        options["on_change"] = on_change
    return import_goal(**{**options, **extra})


def seed_anna(harness: Harness) -> None:
    """C1 holds points and a tag from before any file (an earlier system, a hand edit)."""
    harness.store.ensure_unique_properties(["customer_id"])
    with harness.store.transaction() as tx:
        tx.save_profiles(
            [Profile("p1", {"customer_id": ["C1"], "points": ["100"], "tags": ["vip"]})]
        )


async def import_first_versions(harness: Harness) -> None:
    # one after the other: uploaded together, b.csv could be stamped a second before a.csv
    # and imported first (files go oldest first)
    await harness.put({"in/a.csv": csv_bytes(HEADER, "C1,a1@x.org,10.50,a|b", "C2,b@x.org,5,x")})
    await harness.put({"in/b.csv": csv_bytes(HEADER, "C1,,1,b")})
    first = await harness.run()
    assert first.record.status is RunStatus.SUCCESS
    assert harness.properties("C1")["points"] == ["111.50"]
    assert harness.properties("C1")["tags"] == ["vip", "a", "b"]


async def test_replace_takes_the_earlier_version_back_before_applying_the_corrected_one(
    harness: Harness,
) -> None:
    seed_anna(harness)
    harness.write_connection(goal())
    await import_first_versions(harness)
    await harness.put({"in/a.csv": csv_bytes(HEADER, "C1,a2@x.org,20,c", "C3,c@x.org,7,z")})

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    c1, c2, c3 = (harness.properties(key) for key in ("C1", "C2", "C3"))
    assert c1["points"] == ["121.00"]  # 100 before + 1 from b.csv + 20 from a.csv's new version
    assert c1["tags"] == ["vip", "b", "c"]  # a: gone with its version; b: b.csv lists it too
    assert c1["email"] == ["a2@x.org"]
    assert c2 == {"customer_id": ["C2"], "email": ["b@x.org"]}  # set stays; sum and add gone
    assert c3 == {"customer_id": ["C3"], "email": ["c@x.org"], "points": ["7"], "tags": ["z"]}
    counts = outcome.record.counts
    assert (counts.files, counts.files_skipped, counts.files_replaced) == (1, 1, 1)
    assert counts.files_reapplied == 0
    assert (counts.profiles_created, counts.profiles_updated) == (1, 2)

    await harness.put({"in/a.csv": csv_bytes(HEADER, "C1,a3@x.org,5,c")})  # and once more
    await harness.run()
    assert harness.properties("C1")["points"] == ["106.00"]
    assert harness.properties("C1")["tags"] == ["vip", "b", "c"]
    assert "points" not in harness.properties("C3")
    assert "tags" not in harness.properties("C3")


async def test_reapply_is_the_default_and_says_sums_were_added_twice(harness: Harness) -> None:
    seed_anna(harness)
    harness.write_connection(goal(on_change=None))
    await import_first_versions(harness)
    await harness.put({"in/a.csv": csv_bytes(HEADER, "C1,a2@x.org,20,c")})

    with structlog.testing.capture_logs() as log_events:
        outcome = await harness.run()

    assert harness.properties("C1")["points"] == ["131.50"]  # 111.50 + 20: a.csv counts twice
    assert harness.properties("C1")["tags"] == ["vip", "a", "b", "c"]
    counts = outcome.record.counts
    assert (counts.files_reapplied, counts.files_replaced) == (1, 0)
    [warning] = [e for e in log_events if "applied again" in e["event"]]
    assert warning["log_level"] == "warning"
    assert warning["properties"] == ["points", "tags"]
    assert warning["why"] == "content changed since it was imported"
    history = harness.cli("history", CONNECTION, "--run", str(outcome.record.id))
    assert "1 changed file(s) applied again on top of their earlier version" in history.stdout
    assert "sums added twice (see on_change)" in history.stdout


async def test_a_changed_goal_under_replace_imports_again_without_counting_sums_twice(
    harness: Harness,
) -> None:
    harness.write_connection(goal())
    await harness.put({"in/a.csv": csv_bytes(HEADER, "C1,a@x.org,10,t", "C1,,2,u")})
    await harness.run()
    harness.write_connection(
        goal(mappings=[*MAPPINGS, {"column": "email", "property": "contact", "rule": "set"}])
    )

    outcome = await harness.run()

    assert outcome.record.counts.files_replaced == 1
    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "email": ["a@x.org"],
        "contact": ["a@x.org"],
        "points": ["12"],
        "tags": ["t", "u"],
    }


async def test_switching_on_change_imports_nothing_again(harness: Harness) -> None:
    assert goal_fingerprint(
        harness_goal := _goal_model(harness, "reapply"), []
    ) == goal_fingerprint(_goal_model(harness, "replace"), [])
    assert harness_goal.on_change == "reapply"


def _goal_model(harness: Harness, on_change: str) -> Any:
    harness.write_connection(goal(on_change=on_change))
    return harness.workspace().connection(CONNECTION).goal(GOAL)


async def test_a_sum_whose_stored_value_became_text_is_left_and_the_rest_withdrawn(
    harness: Harness,
) -> None:
    harness.write_connection(goal())
    await harness.put({"in/a.csv": csv_bytes(HEADER, "C1,a@x.org,10,t", "C2,b@x.org,4,t")})
    await harness.run()
    with harness.store.transaction() as tx:  # someone wrote text over C1's points
        [profile] = tx.load_profiles([harness.profile("C1").id]).values()
        profile.properties["points"] = ["n/a"]
        tx.save_profiles([profile])
    await harness.put({"in/a.csv": csv_bytes(HEADER, "C2,b@x.org,6,t")})

    outcome = await harness.run()

    assert harness.properties("C1")["points"] == ["n/a"]
    assert "tags" not in harness.properties("C1")
    assert harness.properties("C2")["points"] == ["6"]
    assert outcome.record.status is RunStatus.SUCCESS


async def test_a_deleted_profile_takes_its_contributions_with_it(harness: Harness) -> None:
    harness.write_connection(goal(delete_column="gone"))
    await harness.put({"in/a.csv": csv_bytes(f"{HEADER},gone", "C1,a@x.org,10,t,false")})
    await harness.run()
    await harness.put({"in/b.csv": csv_bytes(f"{HEADER},gone", "C1,,,,true")})
    await harness.run()
    await harness.put({"in/a.csv": csv_bytes(f"{HEADER},gone", "C1,a@x.org,3,t,false")})

    await harness.run()

    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "email": ["a@x.org"],
        "points": ["3"],
        "tags": ["t"],
    }


def test_the_run_note_names_each_way_a_changed_file_was_taken() -> None:
    assert changed_files_note(RunCounts()) is None
    both = changed_files_note(RunCounts(files_reapplied=2, files_replaced=1))
    assert both == (
        "2 changed file(s) applied again on top of their earlier version: sums added twice "
        "(see on_change); 1 changed file(s) replaced their earlier version (on_change: replace)"
    )


@pytest.mark.parametrize(
    ("number", "negated"),
    [("12.50", "-12.50"), ("-3", "3"), ("0", "0"), ("0.00", "0.00"), ("+4", "-4"), (".5", "-.5")],
)
def test_negate_turns_the_sign_of_a_canonical_number(number: str, negated: str) -> None:
    assert negate(number) == negated
    assert Decimal(negate(number)) == -Decimal(number)


# ---------------------------------------------------------------- killed mid-replace

FILES, ROWS, CUSTOMERS = 4, 4000, 1500


def version(part: int, edition: int) -> bytes:
    """File `part` in its `edition`: the same customers, other points and tags."""
    lines = [HEADER]
    for i in range(ROWS):
        customer = f"C{(i * 7 + part * 3) % CUSTOMERS:05d}"
        lines.append(f"{customer},c{i}@x.org,{(i % 50) + edition},t{i % 11}-{edition}|p{part}")
    return ("\n".join(lines) + "\n").encode()


def expected(edition_of: dict[int, int]) -> dict[str, tuple[str, list[str]]]:
    """Points and tags when each file counts once, at the given edition."""
    points: dict[str, Decimal] = {}
    tags: dict[str, dict[str, None]] = {}
    for part, edition in sorted(edition_of.items()):
        for line in version(part, edition).decode().splitlines()[1:]:
            customer, _email, value, listed = line.split(",")
            points[customer] = points.get(customer, Decimal(0)) + Decimal(value)
            tags.setdefault(customer, {}).update(dict.fromkeys(listed.split("|")))
    return {c: (str(points[c]), sorted(tags[c])) for c in points}


@pytest.mark.slow
async def test_a_run_killed_mid_replace_and_run_again_counts_each_file_once_at_its_latest(
    harness: Harness,
) -> None:
    harness.write_connection(goal())
    await harness.put({f"in/part-{p}.csv": version(p, 1) for p in range(FILES)})
    assert (await harness.run()).record.status is RunStatus.SUCCESS
    await harness.put({f"in/part-{p}.csv": version(p, 2) for p in range(FILES)})
    store = harness.store
    first_run = {e.key: e.run_id for e in store.ledger(CONNECTION, GOAL).values()}

    def replaced() -> int:
        entries = store.ledger(CONNECTION, GOAL).values()
        return sum(first_run[e.key] != e.run_id for e in entries)

    for commits in (1, 2):  # killed inside the next file once `commits` corrected ones committed
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "run", CONNECTION],
            env=harness.env(CONNECTOR_BATCH_SIZE="500"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while replaced() < commits:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.005)
        time.sleep(0.1)  # into the next file: its withdrawal and some batches, nothing committed
        assert process.poll() is None, "the run ended before it could be killed"
        process.kill()
        process.wait(timeout=30)
    assert replaced() < FILES
    final = harness.cli("run", CONNECTION, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr

    profiles = {
        profile.properties["customer_id"][0]: profile.properties
        for profile in store.iter_profiles()
    }
    want = expected(dict.fromkeys(range(FILES), 2))
    assert {c: (p["points"][0], sorted(p["tags"])) for c, p in profiles.items()} == {
        c: (str(Decimal(points)), tags) for c, (points, tags) in want.items()
    }
