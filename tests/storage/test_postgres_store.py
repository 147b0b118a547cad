"""The PostgreSQL store beyond the shared store tests: opening, errors, change numbers, columns."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from connector.errors import ConfigError, StoreError
from connector.settings import load_settings
from connector.storage import Profile, SQLiteStore, open_store
from connector.storage.postgres import PostgresStore
from connector.storage.postgres._schema import migrations

pytestmark = pytest.mark.postgres


def closed_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # released when the block ends: nobody listens


def save_then_fail(store: PostgresStore, profile: Profile, *, fail: bool = True) -> None:
    with store.transaction() as tx:
        tx.save_profiles([profile])
        if fail:
            raise RuntimeError


def test_open_store_picks_the_backend_from_the_setting(postgres_url: str, tmp_path: Path) -> None:
    with open_store(postgres_url) as store:
        assert isinstance(store, PostgresStore)
    with open_store(tmp_path / "connector.db") as store:
        assert isinstance(store, SQLiteStore)


def test_first_open_migrates_and_a_second_open_does_not(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        assert first.schema_version() == second.schema_version() == migrations()[-1][0]
        with first.transaction() as tx:
            tx.save_profiles([Profile("p1", {"email": ["a@example.com"]})])
    with PostgresStore(postgres_url) as again:
        assert again.count_profiles() == 1
        assert again.change_seq() == 1


def test_stores_opened_at_once_migrate_once(postgres_url: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(postgres_url))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert errors == []
        assert len(opened) == 4
        assert {store.schema_version() for store in opened} == {migrations()[-1][0]}
    finally:
        for store in opened:
            store.close()


def test_a_store_with_a_newer_schema_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")

    with pytest.raises(StoreError, match="newer than this connector knows"):
        PostgresStore(postgres_url)


def test_an_unreachable_server_names_host_and_port_but_never_the_password() -> None:
    port = closed_port()

    with pytest.raises(StoreError) as caught:
        PostgresStore(f"postgresql://postgres:hunter2-secret@127.0.0.1:{port}/connector")

    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "cannot connect" in message
    assert "hunter2-secret" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://u:hunter2-secret@/db", "names no host"),
        ("postgresql://u:hunter2-secret@db.example:port/db", "invalid port"),
        ("postgresql://u:hunter2-secret@db.example:5432", "names no database"),
    ],
)
def test_a_wrong_url_is_a_settings_error_naming_the_setting_not_the_password(
    url: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.setenv("CONNECTOR_DATABASE", url)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert "CONNECTOR_DATABASE" in message
    assert problem in message
    assert "hunter2-secret" not in message
    with pytest.raises(StoreError, match=problem):
        PostgresStore(url)


def test_a_url_in_the_settings_file_is_kept_as_is_and_its_password_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.logging import redact_text  # noqa: PLC0415

    monkeypatch.delenv("CONNECTOR_DATABASE", raising=False)
    settings_file = tmp_path / "settings.yaml"
    url = "postgresql://connector:s3cret-pw@db.example:6432/profiles"
    settings_file.write_text(f"database: {url}\n", "utf-8")

    settings = load_settings(settings_file)

    assert settings.database == url  # not made relative to the settings file
    assert "s3cret-pw" not in redact_text(f"store {url}")


def test_a_rolled_back_transaction_leaves_a_gap_and_no_stamp(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        with store.transaction() as tx:
            tx.save_profiles([Profile("a")])
        with pytest.raises(RuntimeError):
            save_then_fail(store, Profile("b"))

        assert store.change_seq() == 1  # the rolled-back number is never reported
        with store.transaction() as tx:
            tx.save_profiles([Profile("c")])

        assert {p.id: p.change_seq for p in store.iter_profiles()} == {"a": 1, "c": 3}
        assert store.change_seq() == 3


def test_change_seq_stays_below_a_transaction_that_may_still_commit(postgres_url: str) -> None:
    """An export must not move its watermark past profiles that commit later."""
    with PostgresStore(postgres_url) as slow, PostgresStore(postgres_url) as fast:
        with slow.transaction() as slow_tx:
            slow_tx.save_profiles([Profile("slow")])  # number 1, still open
            with fast.transaction() as fast_tx:
                fast_tx.save_profiles([Profile("fast")])  # number 2, committed
            assert fast.change_seq() == 0
            assert [p.id for p in fast.iter_profiles(changed_after=0)] == ["fast"]
        assert fast.change_seq() == 2
        assert [p.id for p in fast.iter_profiles(changed_after=0)] == ["slow", "fast"]


def test_each_property_gets_a_column_that_other_stores_see(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as writer, PostgresStore(postgres_url) as reader:
        assert reader.get_profile("p1") is None  # the reader caches the registry now
        with writer.transaction() as tx:
            tx.save_profiles([Profile("p1", {"naam klant": ["Zoë"], "$x[0]": ["1"]})])
        writer.ensure_properties(["points"])

        profile = reader.get_profile("p1")
        assert profile is not None
        assert profile.properties == {"naam klant": ["Zoë"], "$x[0]": ["1"]}
        assert [p.id for p in reader.find_profiles("naam klant", "Zoë")] == ["p1"]
        assert reader.find_profiles("points", "1") == []
    with psycopg.connect(postgres_url) as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'profiles' AND table_schema = current_schema() "
            "ORDER BY ordinal_position"
        ).fetchall()
    assert [name for (name,) in columns] == [
        "id",
        "created_at",
        "updated_at",
        "change_seq",
        "p1",
        "p2",
        "p3",
    ]


def test_two_stores_adding_the_same_property_at_once_both_succeed(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        errors: list[BaseException] = []
        with first.transaction() as tx:
            tx.save_profiles([Profile("a", {"email": ["a@example.com"]})])

            def second_writer() -> None:
                try:
                    with second.transaction() as other:
                        other.save_profiles([Profile("b", {"email": ["b@example.com"]})])
                except BaseException as error:
                    errors.append(error)

            thread = threading.Thread(target=second_writer)
            thread.start()
            thread.join(timeout=0.5)  # it waits for the first transaction
            assert thread.is_alive()
        thread.join(timeout=30)

        assert errors == []
        assert [p.properties for p in first.iter_profiles()] == [
            {"email": ["a@example.com"]},
            {"email": ["b@example.com"]},
        ]


def test_a_value_postgres_cannot_hold_fails_the_transaction_clearly(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        with pytest.raises(StoreError, match="nothing of this transaction was kept"):
            save_then_fail(store, Profile("p1", {"note": ["a\x00b"]}), fail=False)
        assert store.count_profiles() == 0
