"""Profiles in the SQLite store: transactions, change sequence, iteration, unique identifiers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from connector.errors import StoreError
from connector.storage import (
    PROFILE_ID,
    Group,
    LedgerEntry,
    Profile,
    ProfileStore,
    SQLiteStore,
)
from connector.storage.sqlite import _profiles as sqlite_profiles
from connector.storage.sqlite import _transaction as sqlite_transaction


class BoomError(Exception):
    """An error raised inside a transaction on purpose."""


def save(store: ProfileStore, *profiles: Profile) -> None:
    with store.transaction() as tx:
        tx.save_profiles(profiles)


def save_then_fail(store: ProfileStore, *profiles: Profile) -> None:
    with store.transaction() as tx:
        tx.save_profiles(profiles)
        raise BoomError


def ledger_entry(key: str = "daily/a.csv", etag: str = "etag-1") -> LedgerEntry:
    return LedgerEntry(
        "crm", "nightly", key, etag, "fingerprint", 3, datetime(2024, 5, 1, 12, 0, tzinfo=UTC), 7
    )


def email_of(store: ProfileStore, email: str) -> str | None:
    with store.transaction() as tx:
        return tx.resolve_profiles("email", [email]).get(email)


# -- transactions -----------------------------------------------------------------


def test_transaction_commits_profiles_groups_members_and_ledger_together(
    store: SQLiteStore,
) -> None:
    with store.transaction() as tx:
        tx.save_profiles([Profile("p1", {"name": ["Ann"]})])
        tx.save_groups([Group("household", "h1", {"size": ["1"]})])
        tx.add_members("household", [("h1", "p1")])
        tx.record_file(ledger_entry())

    assert store.get_profile("p1") is not None
    group = store.get_group("household", "h1")
    assert group is not None
    assert group.members == ["p1"]
    assert store.ledger("crm", "nightly") == {"daily/a.csv": ledger_entry()}


def test_exception_in_transaction_rolls_back_every_write(store: SQLiteStore) -> None:
    save(store, Profile("p0", {"name": ["Before"]}))
    seq_before = store.change_seq()

    def write_everything_then_fail() -> None:
        with store.transaction() as tx:
            tx.save_profiles([Profile("p1", {"name": ["Ann"]})])
            tx.save_profiles([Profile("p0", {"name": ["Changed"]})])
            tx.save_groups([Group("household", "h1", {"size": ["1"]})])
            tx.add_members("household", [("h1", "p1"), ("h1", "p0")])
            tx.record_file(ledger_entry())
            raise BoomError

    with pytest.raises(BoomError):
        write_everything_then_fail()

    assert store.get_profile("p1") is None
    p0 = store.get_profile("p0")
    assert p0 is not None
    assert p0.properties == {"name": ["Before"]}
    assert store.get_group("household", "h1") is None
    assert store.groups_of_profile("p0") == {}
    assert store.groups_of_profile("p1") == {}
    assert store.ledger("crm", "nightly") == {}
    assert store.change_seq() == seq_before
    assert store.count_profiles() == 1


def test_store_is_usable_after_a_rolled_back_transaction(store: SQLiteStore) -> None:
    with pytest.raises(BoomError):
        save_then_fail(store, Profile("p1"))

    save(store, Profile("p2"))

    assert [p.id for p in store.iter_profiles()] == ["p2"]


def test_second_transaction_on_the_same_store_is_refused(store: SQLiteStore) -> None:
    with store.transaction(), pytest.raises(StoreError, match="already open"), store.transaction():
        pytest.fail("a second transaction must not open")


def test_history_write_inside_an_open_transaction_is_refused_clearly(store: SQLiteStore) -> None:
    with store.transaction() as tx:
        tx.save_profiles([Profile("p1")])
        with pytest.raises(StoreError, match="while a transaction is open"):
            store.ensure_unique_properties(["email"])

    assert store.get_profile("p1") is not None


# -- saving and loading ---------------------------------------------------------


def test_multi_valued_unicode_properties_round_trip(store: SQLiteStore) -> None:
    properties = {
        "name": ["Zoë Ğüneş-Ørsted"],
        "tags": ["日本語", "emoji 🎉", "a|b;c", "  spaced  ", 'quote "x"'],
        "city": ["Zürich", "Köln"],
        "empty": [],
    }
    save(store, Profile("klant-Ω", properties))

    stored = store.get_profile("klant-Ω")
    assert stored is not None
    assert stored.properties == properties
    assert stored.properties["tags"] == properties["tags"]  # order kept
    with store.transaction() as tx:
        loaded = tx.load_profiles(["klant-Ω", "missing"])
    assert list(loaded) == ["klant-Ω"]
    assert loaded["klant-Ω"].properties == properties


def test_resave_replaces_properties_and_keeps_created_at(store: SQLiteStore) -> None:
    save(store, Profile("p1", {"name": ["Ann"], "city": ["Utrecht"]}))
    first = store.get_profile("p1")
    assert first is not None
    assert first.created_at is not None
    assert first.updated_at == first.created_at

    save(store, Profile("p1", {"name": ["Anna"]}))

    second = store.get_profile("p1")
    assert second is not None
    assert second.properties == {"name": ["Anna"]}
    assert second.created_at == first.created_at
    assert second.updated_at is not None
    assert second.updated_at > first.updated_at
    assert store.count_profiles() == 1


def test_save_profiles_returns_the_count(store: SQLiteStore) -> None:
    with store.transaction() as tx:
        assert tx.save_profiles(Profile(f"p{i}") for i in range(5)) == 5


# -- change sequence ----------------------------------------------------------------


def test_change_seq_is_one_number_per_transaction_and_grows(store: SQLiteStore) -> None:
    assert store.change_seq() == 0
    with store.transaction() as tx:
        tx.save_profiles([Profile("a"), Profile("b")])
        tx.save_groups([Group("household", "h1")])
        tx.save_profiles([Profile("c")])
    first = store.change_seq()
    with store.transaction() as tx:
        saved = [Profile("d"), Profile("a")]
        tx.save_profiles(saved)
    second = store.change_seq()

    assert first >= 1
    assert second == first + 1
    assert {p.id: p.change_seq for p in store.iter_profiles()} == {
        "a": second,
        "b": first,
        "c": first,
        "d": second,
    }
    assert [p.change_seq for p in saved] == [second, second]  # stamped on the saved objects


@pytest.mark.sqlite_only  # PostgreSQL: a rolled-back number is a gap (test_postgres_changes.py)
def test_change_seq_does_not_advance_for_a_rolled_back_transaction(store: SQLiteStore) -> None:
    save(store, Profile("a"))
    with pytest.raises(BoomError):
        save_then_fail(store, Profile("b"))

    save(store, Profile("c"))

    assert store.change_seq() == 2
    assert {p.id: p.change_seq for p in store.iter_profiles()} == {"a": 1, "c": 2}


def test_changed_profiles_counts_distinct_profiles_of_the_transaction(store: SQLiteStore) -> None:
    save(store, Profile("old"))
    with store.transaction() as tx:
        tx.save_profiles([Profile("a"), Profile("b")])
        tx.save_profiles([Profile("a", {"x": ["1"]})])
        seq, count = tx.changed_profiles()

    assert seq == store.change_seq()
    assert count == 2
    assert store.count_profiles_changed_in([seq]) == 2
    assert store.count_profiles_changed_in([seq, seq - 1]) == 3
    assert store.count_profiles_changed_in([]) == 0


# -- iteration ----------------------------------------------------------------------


def test_iter_profiles_streams_every_profile_in_id_order_across_batches(
    store: SQLiteStore,
) -> None:
    ids = [f"p{i:03d}" for i in range(50)]
    shuffled = ids[:]
    random.Random(4).shuffle(shuffled)
    with store.transaction() as tx:
        for start in range(0, 50, 10):  # saved in scrambled order, over several calls
            tx.save_profiles(Profile(i, {"n": [i]}) for i in shuffled[start : start + 10])

    streamed = list(store.iter_profiles(batch_size=7))

    assert [p.id for p in streamed] == ids
    assert all(p.properties == {"n": [p.id]} for p in streamed)


@pytest.mark.parametrize("total", [0, 1, 7, 14, 15])
def test_iter_profiles_handles_batch_boundaries(store: SQLiteStore, total: int) -> None:
    save(store, *(Profile(f"p{i:02d}") for i in range(total)))

    assert [p.id for p in store.iter_profiles(batch_size=7)] == [f"p{i:02d}" for i in range(total)]


def test_iter_profiles_changed_after_returns_exactly_later_changes(store: SQLiteStore) -> None:
    save(store, *(Profile(f"a{i}") for i in range(5)))
    watermark = store.change_seq()
    save(store, *(Profile(f"b{i}") for i in range(5)))
    save(store, Profile("a2", {"x": ["changed"]}), Profile("c0"))
    latest = store.change_seq()

    changed = list(store.iter_profiles(changed_after=watermark, batch_size=3))

    assert [p.id for p in changed] == ["b0", "b1", "b2", "b3", "b4", "a2", "c0"]
    assert all(p.change_seq > watermark for p in changed)
    assert list(store.iter_profiles(changed_after=latest)) == []
    assert [p.id for p in store.iter_profiles(changed_after=latest - 1)] == ["a2", "c0"]
    assert len(list(store.iter_profiles(changed_after=0, batch_size=2))) == 11


def test_iter_profiles_rejects_a_batch_size_below_one(store: SQLiteStore) -> None:
    save(store, Profile("p1"))
    with pytest.raises(ValueError, match="batch_size"):
        list(store.iter_profiles(batch_size=0))


# -- unique properties and identifiers ------------------------------------------------


def test_ensure_unique_properties_indexes_existing_values(store: SQLiteStore) -> None:
    save(
        store,
        Profile("p1", {"email": ["ann@example.com", "ann@work.example"]}),
        Profile("p2", {"email": ["bob@example.com"], "customer_id": ["C-2"]}),
        Profile("p3", {"name": ["No email"]}),
    )

    store.ensure_unique_properties(["email", "customer_id"])

    assert store.unique_properties() == frozenset({"email", "customer_id"})
    with store.transaction() as tx:
        found = tx.resolve_profiles(
            "email", ["ann@example.com", "ann@work.example", "bob@example.com", "nobody@x"]
        )
        by_customer = tx.resolve_profiles("customer_id", ["C-2"])
    assert found == {
        "ann@example.com": "p1",
        "ann@work.example": "p1",
        "bob@example.com": "p2",
    }
    assert by_customer == {"C-2": "p2"}


def test_unique_properties_survive_reopening(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.ensure_unique_properties(["email"])
    with SQLiteStore(db_path) as store:
        assert store.unique_properties() == frozenset({"email"})


def test_resolve_profiles_by_profile_id_finds_existing_ids(store: SQLiteStore) -> None:
    save(store, Profile("p1"), Profile("p2"))

    with store.transaction() as tx:
        assert tx.resolve_profiles(PROFILE_ID, ["p1", "p2", "p9", "p1"]) == {"p1": "p1", "p2": "p2"}


def test_resolve_profiles_sees_profiles_saved_earlier_in_the_transaction(
    store: SQLiteStore,
) -> None:
    store.ensure_unique_properties(["email"])
    with store.transaction() as tx:
        tx.save_profiles([Profile("p1", {"email": ["ann@example.com"]})])
        assert tx.resolve_profiles("email", ["ann@example.com"]) == {"ann@example.com": "p1"}


def test_resolve_profiles_handles_more_values_than_one_sql_chunk(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, *(Profile(f"p{i}", {"email": [f"u{i}@example.com"]}) for i in range(1200)))

    with store.transaction() as tx:
        found = tx.resolve_profiles("email", [f"u{i}@example.com" for i in range(1300)])

    assert len(found) == 1200
    assert found["u1199@example.com"] == "p1199"


def test_identifiers_follow_a_changed_value_of_a_loaded_profile(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["old@example.com"]}))

    with store.transaction() as tx:
        profile = tx.load_profiles(["p1"])["p1"]
        profile.properties["email"] = ["new@example.com"]
        tx.save_profiles([profile])

    assert email_of(store, "old@example.com") is None
    assert email_of(store, "new@example.com") == "p1"
    assert store.find_profiles("email", "old@example.com") == []


def test_identifiers_follow_a_profile_saved_whole_without_loading(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["old@example.com"]}))

    save(store, Profile("p1", {"email": ["old@example.com"], "name": ["Ann"]}))  # same value
    save(store, Profile("p1", {"email": ["new@example.com"]}))

    assert email_of(store, "old@example.com") is None
    assert email_of(store, "new@example.com") == "p1"


def test_identifiers_are_removed_when_the_value_is_removed(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["a@example.com", "b@example.com"]}))

    save(store, Profile("p1", {"email": ["b@example.com"]}))
    save(store, Profile("p2", {"email": ["a@example.com"]}))  # the freed value can be reused

    assert email_of(store, "a@example.com") == "p2"
    assert email_of(store, "b@example.com") == "p1"


def test_identifiers_are_removed_when_the_profile_is_deleted(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["ann@example.com"]}))

    with store.transaction() as tx:
        assert tx.delete_profiles(["p1"]) == 1

    assert email_of(store, "ann@example.com") is None
    save(store, Profile("p2", {"email": ["ann@example.com"]}))
    assert email_of(store, "ann@example.com") == "p2"


def test_profiles_can_swap_unique_values_in_one_transaction(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(
        store,
        Profile("p1", {"email": ["x@example.com"]}),
        Profile("p2", {"email": ["y@example.com"]}),
    )

    with store.transaction() as tx:
        loaded = tx.load_profiles(["p1", "p2"])
        loaded["p1"].properties["email"] = ["y@example.com"]
        loaded["p2"].properties["email"] = ["x@example.com"]
        tx.save_profiles(loaded.values())

    assert email_of(store, "x@example.com") == "p2"
    assert email_of(store, "y@example.com") == "p1"


def test_a_value_repeated_within_one_profile_is_not_a_conflict(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])

    save(store, Profile("p1", {"email": ["ann@example.com", "ann@example.com"]}))

    assert email_of(store, "ann@example.com") == "p1"


def test_unique_value_claimed_by_a_second_profile_raises_and_rolls_back(
    store: SQLiteStore,
) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["ann@example.com"]}))

    def save_in_two_batches() -> None:
        with store.transaction() as tx:
            tx.save_profiles([Profile("p3", {"email": ["carl@example.com"]})])
            tx.save_profiles([Profile("p2", {"email": ["ann@example.com"]})])

    with pytest.raises(
        StoreError, match=r"'email' value 'ann@example\.com' belongs to profile 'p1'"
    ):
        save_in_two_batches()

    assert store.get_profile("p2") is None
    assert store.get_profile("p3") is None
    assert email_of(store, "ann@example.com") == "p1"
    assert email_of(store, "carl@example.com") is None
    assert store.count_profiles() == 1


def test_two_profiles_claiming_one_value_in_one_batch_raise(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])

    with pytest.raises(StoreError, match="belongs to profile 'p1'; profile 'p2' cannot have it"):
        save(
            store,
            Profile("p1", {"email": ["same@example.com"]}),
            Profile("p2", {"email": ["same@example.com"]}),
        )

    assert store.count_profiles() == 0


def test_unique_properties_declared_by_another_process_are_maintained(db_path: Path) -> None:
    with SQLiteStore(db_path) as daemon, SQLiteStore(db_path) as cli:
        assert daemon.unique_properties() == frozenset()  # cached before the declaration
        cli.ensure_unique_properties(["email"])

        save(daemon, Profile("p1", {"email": ["ann@example.com"]}))

        assert email_of(cli, "ann@example.com") == "p1"


# -- finding --------------------------------------------------------------------------


def test_find_profiles_by_unique_property(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["ann@example.com"]}), Profile("p2", {"email": ["b@x.nl"]}))

    assert [p.id for p in store.find_profiles("email", "ann@example.com")] == ["p1"]
    assert store.find_profiles("email", "ANN@example.com") == []
    assert store.find_profiles("email", "nobody@example.com") == []


def test_find_profiles_by_non_unique_property_matches_whole_values(store: SQLiteStore) -> None:
    save(
        store,
        Profile("p3", {"country": ["NL"]}),
        Profile("p1", {"country": ["BE", "NL"]}),
        Profile("p2", {"country": ["NLD"]}),
        Profile("p4", {"region": ["NL"]}),
    )

    assert [p.id for p in store.find_profiles("country", "NL")] == ["p1", "p3"]
    assert [p.id for p in store.find_profiles("country", "BE")] == ["p1"]
    assert store.find_profiles("country", "N") == []
    assert store.find_profiles("missing", "NL") == []


def test_find_profiles_with_awkward_property_names(store: SQLiteStore) -> None:
    save(store, Profile("p1", {"address.city": ["Delft"], "naam klant": ["Zoë"], "$x[0]": ["1"]}))

    assert [p.id for p in store.find_profiles("address.city", "Delft")] == ["p1"]
    assert [p.id for p in store.find_profiles("naam klant", "Zoë")] == ["p1"]
    assert [p.id for p in store.find_profiles("$x[0]", "1")] == ["p1"]
    assert store.find_profiles("address", "Delft") == []


def test_find_profiles_by_profile_id(store: SQLiteStore) -> None:
    save(store, Profile("p1"))

    assert [p.id for p in store.find_profiles(PROFILE_ID, "p1")] == ["p1"]
    assert store.find_profiles(PROFILE_ID, "p2") == []


# -- deleting ---------------------------------------------------------------------------


def test_delete_profiles_removes_profiles_identifiers_and_memberships(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    with store.transaction() as tx:
        tx.save_profiles(
            [
                Profile("p1", {"email": ["a@example.com"]}),
                Profile("p2", {"email": ["b@example.com"]}),
            ]
        )
        tx.save_groups([Group("household", "h1")])
        tx.add_members("household", [("h1", "p1"), ("h1", "p2")])

    with store.transaction() as tx:
        assert tx.delete_profiles(["p1", "never-existed"]) == 1

    assert store.get_profile("p1") is None
    assert store.groups_of_profile("p1") == {}
    group = store.get_group("household", "h1")
    assert group is not None
    assert group.members == ["p2"]
    assert email_of(store, "a@example.com") is None
    assert email_of(store, "b@example.com") == "p2"
    assert store.count_profiles() == 1


def test_deleted_profile_can_be_created_again_in_the_same_transaction(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    save(store, Profile("p1", {"email": ["a@example.com"]}))

    with store.transaction() as tx:
        tx.load_profiles(["p1"])
        tx.delete_profiles(["p1"])
        tx.save_profiles([Profile("p1", {"email": ["a@example.com"]})])

    assert email_of(store, "a@example.com") == "p1"


# -- volume -------------------------------------------------------------------------------


def test_twenty_thousand_profiles_in_batches_within_one_transaction(store: SQLiteStore) -> None:
    store.ensure_unique_properties(["email"])
    with store.transaction() as tx:
        for start in range(0, 20_000, 1_000):
            saved = tx.save_profiles(
                Profile(f"p{i:05d}", {"email": [f"user{i}@example.com"], "points": [str(i)]})
                for i in range(start, start + 1_000)
            )
            assert saved == 1_000

    assert store.count_profiles() == 20_000
    assert store.change_seq() == 1
    assert email_of(store, "user19999@example.com") == "p19999"
    assert sum(1 for _ in store.iter_profiles(batch_size=5_000)) == 20_000


@pytest.mark.parametrize(
    "properties",
    [
        {},
        {"empty": []},
        {"email": ["a@example.com"], "interests": ["books", "travel"]},
        {'quote"d': ["back\\slash", "tab\tnew\nline\r", "\x00\x01\x1f\x7f", "é ü 漢字 \u2028 🎉"]},
        {"lone surrogate": ["\ud800"]},
    ],
    ids=["empty", "empty-list", "plain", "escapes", "surrogate"],
)
def test_properties_are_stored_as_the_same_json_text_the_standard_encoder_writes(
    properties: dict[str, list[str]],
) -> None:
    # the store writes profiles with its own fast encoder: it must never differ from json.dumps
    expected = json.dumps(properties, ensure_ascii=False, separators=(",", ":"))
    assert sqlite_transaction._dump_properties(properties) == expected


def test_properties_that_are_not_lists_of_text_fall_back_to_the_standard_encoder() -> None:
    odd: dict[str, Any] = {"count": [1, 2.5, None, True]}
    assert sqlite_transaction._dump_properties(odd) == '{"count":[1,2.5,null,true]}'


@pytest.mark.parametrize("changed_after", [None, 0, 1])
def test_profile_batches_read_what_iter_profiles_reads(
    store: Any, changed_after: int | None
) -> None:
    """The columnar read (exports, segments) sees each profile as the row-level read does."""
    with store.transaction() as tx:
        tx.save_profiles(
            [
                Profile("p1", {"email": ["a@x.org"], "tags": ["a", "b"], "note": ['q"\n\\z']}),
                Profile("p2", {"email": ["b@x.org"], "city name": ["Zürich"]}),
                Profile("p3", {}),
                Profile("p4", {"tags": ["c"]}),
            ]
        )
    with store.transaction() as tx:
        tx.save_profiles([Profile("p2", {"email": ["b2@x.org"]}), Profile("p0", {"tags": ["d"]})])
    names = ["email", "tags", "note", "city name", "never written"]

    read = [
        row
        for table in store.profile_batches(names, changed_after=changed_after, batch_size=2)
        for row in table.to_pylist()
    ]

    expected = [
        {"id": p.id, "change_seq": p.change_seq, **{n: p.properties.get(n) for n in names}}
        for p in store.iter_profiles(changed_after=changed_after)
    ]
    assert read == expected
    assert len(read) == {None: 5, 0: 5, 1: 2}[changed_after]


@pytest.mark.parametrize(
    ("ids", "seqs", "key"),
    [
        (["a", "b", "c"], [1, 1, 1], ["id"]),
        (["b", "a", "c"], [1, 1, 1], ["id"]),
        (["a", "b", "Z"], [1, 2, 3], ["seq", "id"]),
        (["b", "a", "c"], [1, 1, 2], ["seq", "id"]),
        (["a", "b", "c"], [2, 1, 3], ["seq", "id"]),
        (["é", "z"], [1, 1], ["id"]),
        (["x"], [1], ["id"]),
    ],
)
def test_a_page_comes_out_in_key_order_whether_or_not_sqlite_kept_it(
    ids: list[str], seqs: list[int], key: list[str]
) -> None:
    """The page's order check decides as Arrow's sort would (bytewise ids, like SQLite)."""
    page = pa.table({"id": ids, "seq": pa.array(seqs, pa.int64())})
    expected = page.sort_by([(name, "ascending") for name in key])
    assert sqlite_profiles._in_key_order(page, key).equals(expected)
