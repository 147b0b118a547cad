"""Groups, memberships and the file ledger in the SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.storage import Group, LedgerEntry, Profile, SQLiteStore


def make_group_setup(store: SQLiteStore) -> None:
    with store.transaction() as tx:
        tx.save_profiles(Profile(f"p{i}") for i in range(1, 5))
        tx.save_groups(
            [
                Group("household", "h1", {"size": ["2"], "street": ["Gärtnerstraße 1"]}),
                Group("household", "h2", {"size": ["1"]}),
                Group("company", "h1", {"name": ["Acme", "Acme BV"]}),
            ]
        )
        tx.add_members("household", [("h1", "p2"), ("h1", "p1"), ("h2", "p3")])
        tx.add_members("company", [("h1", "p1")])


def test_groups_round_trip_properties_and_keep_types_apart(store: SQLiteStore) -> None:
    make_group_setup(store)

    with store.transaction() as tx:
        households = tx.load_groups("household", ["h1", "h2", "h9"])
        companies = tx.load_groups("company", ["h1", "h2"])

    assert sorted(households) == ["h1", "h2"]
    assert households["h1"].properties == {"size": ["2"], "street": ["Gärtnerstraße 1"]}
    assert households["h1"].members == []  # load_groups does not load members
    assert households["h1"].created_at is not None
    assert list(companies) == ["h1"]
    assert companies["h1"].type == "company"
    assert companies["h1"].properties == {"name": ["Acme", "Acme BV"]}


def test_save_groups_replaces_properties_and_keeps_members(store: SQLiteStore) -> None:
    make_group_setup(store)
    before = store.get_group("household", "h1")
    assert before is not None

    with store.transaction() as tx:
        assert tx.save_groups([Group("household", "h1", {"size": ["3"]})]) == 1

    after = store.get_group("household", "h1")
    assert after is not None
    assert after.properties == {"size": ["3"]}
    assert after.members == ["p1", "p2"]
    assert after.created_at == before.created_at
    assert after.updated_at is not None
    assert before.updated_at is not None
    assert after.updated_at > before.updated_at


def test_add_members_is_idempotent_and_counts_new_pairs(store: SQLiteStore) -> None:
    make_group_setup(store)

    with store.transaction() as tx:
        assert tx.add_members("household", [("h1", "p1"), ("h1", "p2")]) == 0
        assert tx.add_members("household", [("h1", "p1"), ("h1", "p4"), ("h1", "p4")]) == 1

    group = store.get_group("household", "h1")
    assert group is not None
    assert group.members == ["p1", "p2", "p4"]


def test_get_group_returns_properties_and_sorted_members(store: SQLiteStore) -> None:
    make_group_setup(store)

    group = store.get_group("household", "h1")

    assert group is not None
    assert (group.type, group.id) == ("household", "h1")
    assert group.properties == {"size": ["2"], "street": ["Gärtnerstraße 1"]}
    assert group.members == ["p1", "p2"]
    assert store.get_group("household", "h9") is None
    assert store.get_group("account", "h1") is None


def test_groups_of_profile_lists_groups_by_type(store: SQLiteStore) -> None:
    make_group_setup(store)

    assert store.groups_of_profile("p1") == {"company": ["h1"], "household": ["h1"]}
    assert store.groups_of_profile("p3") == {"household": ["h2"]}
    assert store.groups_of_profile("p4") == {}


def test_groups_of_profiles_returns_one_type_for_a_batch(store: SQLiteStore) -> None:
    make_group_setup(store)
    with store.transaction() as tx:
        tx.add_members("household", [("h2", "p1")])

    result = store.groups_of_profiles(["p1", "p2", "p3", "p4", "p1"], "household")

    assert result == {"p1": ["h1", "h2"], "p2": ["h1"], "p3": ["h2"]}
    assert store.groups_of_profiles(["p1"], "company") == {"p1": ["h1"]}
    assert store.groups_of_profiles([], "household") == {}


def test_groups_of_profiles_handles_batches_larger_than_one_sql_chunk(store: SQLiteStore) -> None:
    ids = [f"p{i:04d}" for i in range(1200)]
    with store.transaction() as tx:
        tx.save_groups([Group("household", "big")])
        tx.add_members("household", (("big", profile_id) for profile_id in ids))

    result = store.groups_of_profiles(ids + ids[:10], "household")

    assert len(result) == 1200
    assert all(groups == ["big"] for groups in result.values())


# -- ledger -------------------------------------------------------------------------


def entry(key: str, etag: str, goal: str = "nightly", run_id: int | None = 1) -> LedgerEntry:
    return LedgerEntry(
        "crm",
        goal,
        key,
        etag,
        f"config-{etag}",
        10,
        datetime(2024, 5, 1, 6, 30, tzinfo=UTC),
        run_id,
    )


def test_ledger_records_files_per_goal(store: SQLiteStore) -> None:
    with store.transaction() as tx:
        tx.record_file(entry("daily/a.csv", "e1"))
        tx.record_file(entry("daily/b.csv", "e2", run_id=None))
        tx.record_file(entry("daily/a.csv", "e9", goal="other"))

    assert store.ledger("crm", "nightly") == {
        "daily/a.csv": entry("daily/a.csv", "e1"),
        "daily/b.csv": entry("daily/b.csv", "e2", run_id=None),
    }
    assert store.ledger("crm", "other") == {"daily/a.csv": entry("daily/a.csv", "e9", goal="other")}
    assert store.ledger("other-connection", "nightly") == {}


def test_ledger_entry_for_a_new_file_version_replaces_the_old_one(store: SQLiteStore) -> None:
    with store.transaction() as tx:
        tx.record_file(entry("daily/a.csv", "e1"))
    with store.transaction() as tx:
        tx.record_file(entry("daily/a.csv", "e2", run_id=2))

    assert store.ledger("crm", "nightly") == {"daily/a.csv": entry("daily/a.csv", "e2", run_id=2)}


def test_a_profile_joining_a_group_is_stamped_as_changed_for_incremental_exports(
    store: SQLiteStore,
) -> None:
    make_group_setup(store)
    before = {profile.id: profile.change_seq for profile in store.iter_profiles()}
    mark = store.change_seq()

    with store.transaction() as tx:
        tx.add_members("household", [("h1", "p1"), ("h1", "p4")])  # p1 was a member already

    changed = [profile.id for profile in store.iter_profiles(changed_after=mark)]
    assert changed == ["p4"]
    after = store.get_profile("p4")
    assert after is not None
    assert after.change_seq > before["p4"]
    unchanged = store.get_profile("p1")
    assert unchanged is not None
    assert unchanged.change_seq == before["p1"]
