"""Opening the SQLite store: schema creation, versioning, file permissions."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from connector.errors import StoreError
from connector.storage import Profile, SQLiteStore, open_store
from connector.storage.sqlite import _schema as sqlite_schema
from connector.storage.sqlite import store as sqlite_module

EXPECTED_TABLES = {
    "meta",
    "profiles",
    "properties",
    "unique_properties",
    "identifiers",
    "groups",
    "group_members",
    "ledger",
    "contributions",
    "uploads",
    "runs",
    "run_rejects",
    "run_locks",
    "export_watermarks",
    "export_members",
    "export_members_next",
}


def latest_migration() -> int:
    folder = resources.files("connector.storage.sqlite") / "migrations"
    return max(
        int(entry.name.split("_", 1)[0])
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows} - {"sqlite_sequence"}


def pragma(path: Path, name: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        db.close()


def user_version(path: Path) -> int:
    return pragma(path, "user_version")


def test_first_open_creates_the_schema_and_records_its_version(db_path: Path) -> None:
    assert not db_path.exists()

    with SQLiteStore(db_path) as store:
        assert isinstance(store, SQLiteStore)
        assert store.schema_version() == latest_migration()
        assert store.change_seq() == 0
        assert store.count_profiles() == 0

    assert tables(db_path) == EXPECTED_TABLES
    assert user_version(db_path) == latest_migration()


@pytest.mark.sqlite_only
def test_store_uses_wal_journal_mode(store: SQLiteStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_reopen_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    with SQLiteStore(db_path) as store, store.transaction() as tx:
        tx.save_profiles([Profile("p1", {"email": ["a@example.com"]})])

    # a migration run again would fail (its tables exist) or reset meta.change_seq
    with SQLiteStore(db_path) as store:
        assert isinstance(store, SQLiteStore)
        assert store.schema_version() == latest_migration()
        assert store.change_seq() == 1
        profile = store.get_profile("p1")
        assert profile is not None
        assert profile.properties == {"email": ["a@example.com"]}


def test_opening_a_current_store_needs_no_write_lock(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`connector profiles ...` can open the store while the daemon writes."""
    SQLiteStore(db_path).close()
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 50)
    writer = sqlite3.connect(db_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with SQLiteStore(db_path) as reader:
            assert reader.count_profiles() == 0
        writer.execute("ROLLBACK")
    finally:
        writer.close()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A common umask (022) under which files are world-readable unless created otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_store_file_is_created_readable_by_its_owner_only(db_path: Path) -> None:
    with SQLiteStore(db_path) as store, store.transaction() as tx:
        tx.save_profiles([Profile("p1", {"email": ["a@example.com"]})])
        wal = db_path.with_name(db_path.name + "-wal")
        assert wal.exists()
        # the WAL holds personal data too; SQLite gives it the database file's mode
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600

    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_open_store_returns_a_sqlite_store_for_a_path(db_path: Path) -> None:
    with open_store(db_path) as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == db_path


def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the profiles you are looking for\n" * 100)

    with pytest.raises(StoreError, match=r"cannot open the profile store .*notes\.db"):
        SQLiteStore(path)


def test_a_store_with_a_newer_schema_is_refused(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    db = sqlite3.connect(db_path)
    db.execute(f"PRAGMA user_version={latest_migration() + 1}")
    db.close()

    with pytest.raises(StoreError, match="newer than this connector knows"):
        SQLiteStore(db_path)


def test_concurrent_first_opens_migrate_once(db_path: Path) -> None:
    """Daemon and CLI opening a new store at once: the second must not re-run the migration."""
    db_path.parent.mkdir(parents=True)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")  # the other opener's migration is under way

    errors: list[BaseException] = []
    opened: list[SQLiteStore] = []

    def open_store_in_thread() -> None:
        try:
            opened.append(SQLiteStore(db_path))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=open_store_in_thread)
    thread.start()
    # let the thread read user_version 0 and wait for the write lock
    thread.join(timeout=0.3)
    for number, script in sqlite_schema.migrations():
        for statement in script.split(";\n"):
            if statement.strip():
                holder.execute(statement)
        holder.execute(f"PRAGMA user_version={number}")
    holder.execute("COMMIT")
    holder.close()
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert errors == []
    assert opened[0].schema_version() == latest_migration()
    assert opened[0].count_profiles() == 0
    opened[0].close()


def test_a_new_store_has_8_kib_pages_and_an_older_one_keeps_its_own(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "new.db") as store, store.transaction() as tx:
        tx.save_profiles([Profile("p1", {"email": ["a@example.com"]})])
    assert pragma(tmp_path / "new.db", "page_size") == 8192
    old = tmp_path / "old.db"  # made by 0.1 with SQLite's default 4 KiB pages
    old.write_bytes((Path(__file__).parent / "data" / "store_v1.db").read_bytes())
    with SQLiteStore(old) as store, store.transaction() as tx:
        tx.save_profiles([Profile("p9", {"email": ["z@example.com"]})])
    assert pragma(old, "page_size") == 4096
    with SQLiteStore(old) as store:
        assert [p.id for p in store.find_profiles("email", "z@example.com")] == ["p9"]


def test_a_store_written_by_release_0_1_is_migrated_to_property_columns(tmp_path: Path) -> None:
    """A JSON-document store (schema 1, made by connector 0.1) opens with nothing lost."""
    path = tmp_path / "store.db"
    path.write_bytes((Path(__file__).parent / "data" / "store_v1.db").read_bytes())
    assert user_version(path) == 1

    with SQLiteStore(path) as store:
        assert store.schema_version() == latest_migration()
        ann = store.get_profile("p1")
        assert ann is not None
        assert ann.properties == {
            "email": ["ann@example.com"],
            "points": ["12.50"],
            "tags": ["a", "b"],
            "city name": ["Zürich"],
        }
        bob = store.get_profile("p2")
        assert bob is not None
        assert bob.properties == {"email": ["bob@example.com"], "empty": [], "blank": [""]}
        assert [p.id for p in store.find_profiles("email", "bob@example.com")] == ["p2"]
        assert [p.id for p in store.find_profiles("tags", "b")] == ["p1"]
        assert store.count_profiles() == 3
        assert store.unique_properties() == frozenset({"email"})
        group = store.get_group("household", "h1")
        assert group is not None
        assert group.members == ["p1", "p2"]
        assert set(store.ledger("crm", "nightly")) == {"daily/a.csv"}
        (run,) = store.list_runs("crm")
        assert run.counts.rows_rejected == 1
        assert [r.reason for r in store.run_rejects(run.id)] == ["bad"]
        watermark = store.export_watermark("crm", "out")
        assert watermark is not None
        assert watermark.change_seq == store.change_seq()
    assert "profiles_json" not in tables(path)
