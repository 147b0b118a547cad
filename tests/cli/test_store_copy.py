"""`connector store copy`: a SQLite store into PostgreSQL and back, everything kept and counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.storage import (
    Contribution,
    FileKey,
    Group,
    LedgerEntry,
    Profile,
    ProfileStore,
    RowReject,
    RunCounts,
    RunStatus,
    SQLiteStore,
    Trigger,
    open_store,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def no_settings_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.delenv("CONNECTOR_DATABASE", raising=False)


def fill(store: ProfileStore) -> None:
    store.ensure_unique_properties(["email"])
    with store.transaction() as tx:
        tx.save_profiles(
            Profile(f"p{i:03d}", {"email": [f"u{i}@example.com"], "tags": ["a", "b"][: i % 3]})
            for i in range(120)
        )
        tx.save_groups([Group("household", "h1", {"size": ["2"]}), Group("company", "c1")])
        tx.add_members("household", [("h1", "p001"), ("h1", "p002")])
    with store.transaction() as tx:
        tx.save_profiles([Profile("p005", {"email": ["new@example.com"], "naam klant": ["Zoë"]})])
        tx.add_members("company", [("c1", "p005")])
    failed = store.start_run("crm", "nightly", Trigger.SCHEDULE)
    store.add_rejects(failed.id, [RowReject("daily/a.csv", 3, "points", "not a number")])
    store.finish_run(failed.id, RunStatus.PARTIAL, RunCounts(files=1, rows_read=4), "1 row")
    done = store.start_run("shop", None, Trigger.MANUAL, dry_run=True)
    store.finish_run(done.id, RunStatus.SUCCESS, RunCounts(files=2))
    with store.transaction() as tx:
        when = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
        tx.record_file(LedgerEntry("crm", "nightly", "daily/a.csv", "e1", "f1", 4, when, failed.id))
        tx.replace_file_contributions(
            NIGHTLY_A,
            [
                Contribution("p001", "points", "sum", "12.50"),
                Contribution("p001", "tags", "add", "b", added=False),
                Contribution("p002", "tags", "add", "a"),
            ],
        )
    store.set_export_watermark("crm", "out", 1, datetime(2026, 5, 2, tzinfo=UTC))


NIGHTLY_A = FileKey("crm", "nightly", "daily/a.csv")


def contributions(store: ProfileStore) -> list[Contribution]:
    with store.transaction() as tx:
        return tx.file_contributions(NIGHTLY_A)


def contents(store: ProfileStore) -> dict[str, Any]:
    """Everything a user can see of a store, comparable across backends."""
    return {
        "profiles": [
            (p.id, p.properties, p.created_at, p.updated_at, p.change_seq)
            for p in store.iter_profiles()
        ],
        "groups": [store.get_group("household", "h1"), store.get_group("company", "c1")],
        "unique": store.unique_properties(),
        "owner of new@": [p.id for p in store.find_profiles("email", "new@example.com")],
        "runs": store.list_runs(),
        "rejects": [store.run_rejects(run.id) for run in store.list_runs()],
        "ledger": store.ledger("crm", "nightly"),
        "contributions": contributions(store),
        "watermark": store.export_watermark("crm", "out"),
        "change_seq": store.change_seq(),
    }


def copy(source: str, target: str, *extra: str) -> int:
    return main(["store", "copy", "--from", source, "--to", target, *extra])


def test_a_store_survives_a_round_trip_through_postgresql(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source, back = str(tmp_path / "source.db"), str(tmp_path / "back.db")
    with SQLiteStore(source) as store:
        fill(store)
        expected = contents(store)

    assert copy(source, postgres_url) == 0
    assert copy(postgres_url, back) == 0

    with open_store(postgres_url) as middle:
        assert contents(middle) == expected
        run = middle.start_run("crm", None, Trigger.MANUAL)  # ids carry on after the copied ones
        assert run.id == max(r.id for r in expected["runs"]) + 1
    with SQLiteStore(back) as store:
        assert contents(store) == expected
    printed = capsys.readouterr().out
    assert "profiles           120" in printed
    assert "run_rejects        1" in printed
    assert "contributions      3" in printed


def test_a_target_with_data_is_refused_unless_forced(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(tmp_path / "source.db")
    with SQLiteStore(source) as store:
        fill(store)
    with open_store(postgres_url) as target, target.transaction() as tx:
        tx.save_profiles([Profile("stranger")])

    assert copy(source, postgres_url) == 1
    assert "the target store is not empty (profiles: 1)" in capsys.readouterr().err

    assert copy(source, postgres_url, "--force") == 0
    with open_store(postgres_url) as target:
        assert target.get_profile("stranger") is None
        assert target.count_profiles() == 120


def test_a_copy_names_a_postgresql_store_without_its_password(
    tmp_path: Path, postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = postgres.replace("postgres@", "postgres:hunter2-secret@").replace(
        "127.0.0.1:5432", "127.0.0.1:1"
    )

    source = tmp_path / "source.db"
    SQLiteStore(source).close()

    assert copy(str(source), wrong) == 1

    error = capsys.readouterr().err
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in error
    assert "hunter2-secret" not in error


def test_a_missing_source_is_no_store_and_nothing_is_created(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mistyped = tmp_path / "sorce.db"

    assert copy(str(mistyped), postgres_url) == 4

    assert f"no store at {mistyped}" in capsys.readouterr().err
    assert not mistyped.exists()
    with open_store(postgres_url) as target:
        assert target.count_profiles() == 0
