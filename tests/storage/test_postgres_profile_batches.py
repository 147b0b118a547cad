"""The PostgreSQL store's native `profile_batches`: the same tables as the default built
from `iter_profiles` (`ProfileStore.profile_batches`, called on the base class)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.storage import Profile, ProfileStore
from connector.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

LIST = pa.list_(pa.string())
ODD_VALUES = [
    "a,b",
    'say "hi"',
    "two\nlines\r\n",
    "back\\slash",
    "\\n is not a newline",
    "ends with a backslash\\",
    '\\"',
    '","',
    "tab\tand \x01\x08\x0c\x1b\x1f\x7f controls",
    "é ü 漢字 \u2028 🎉",
    "",
    "null",
    ",null",
    "[null",
    "{}",
    "NULL",
    " ",
]


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url)
    try:
        yield opened
    finally:
        opened.close()


def save(store: ProfileStore, *profiles: Profile) -> None:
    with store.transaction() as tx:
        tx.save_profiles(profiles)


def native(store: ProfileStore, names: Sequence[str], **options: Any) -> list[pa.Table]:
    return list(store.profile_batches(names, **options))


def default(store: ProfileStore, names: Sequence[str], **options: Any) -> list[pa.Table]:
    return list(ProfileStore.profile_batches(store, names, **options))


def rows(tables: list[pa.Table]) -> list[dict[str, Any]]:
    return [row for table in tables for row in table.to_pylist()]


def assert_same_as_default(store: ProfileStore, names: Sequence[str], **options: Any) -> None:
    got, expected = native(store, names, **options), default(store, names, **options)
    assert [table.num_rows for table in got] == [table.num_rows for table in expected]
    for table, wanted in zip(got, expected, strict=True):
        assert table.schema == wanted.schema
        assert table.to_pylist() == wanted.to_pylist()


def test_odd_values_come_back_exactly(store: PostgresStore) -> None:
    save(
        store,
        Profile("p1", {"odd": ODD_VALUES}),
        *(Profile(f"v{index:02d}", {"odd": [value]}) for index, value in enumerate(ODD_VALUES)),
        Profile("p2", {"odd": ["", ""], "other": ["x"]}),
    )
    read = {row["id"]: row["odd"] for row in rows(native(store, ["odd"]))}
    assert read["p1"] == ODD_VALUES
    assert [read[f"v{index:02d}"] for index in range(len(ODD_VALUES))] == [
        [value] for value in ODD_VALUES
    ]
    assert read["p2"] == ["", ""]
    assert_same_as_default(store, ["odd", "other"])


def test_an_empty_list_reads_as_no_value_and_one_empty_string_stays(store: PostgresStore) -> None:
    save(store, Profile("a", {"x": [], "y": [""]}), Profile("b", {"y": ["", "z"]}))
    assert rows(native(store, ["x", "y"])) == [
        {"id": "a", "change_seq": 1, "x": None, "y": [""]},
        {"id": "b", "change_seq": 1, "x": None, "y": ["", "z"]},
    ]
    assert_same_as_default(store, ["x", "y"])


def test_a_null_element_saved_through_the_row_api_reads_as_the_default_does(
    store: PostgresStore,
) -> None:
    # not a list of strings, but the row path stores it: read it as `iter_profiles` does
    save(store, Profile("a", {"x": [None, "q"]}), Profile("b", {"x": ["q", None]}))  # type: ignore[list-item]
    assert rows(native(store, ["x"]))[0]["x"] == [None, "q"]
    assert_same_as_default(store, ["x"])


def test_many_small_pages_in_id_order(store: PostgresStore) -> None:
    save(store, *(Profile(f"p{n:03d}", {"n": [str(n)], "tags": ["a", "b"]}) for n in range(25)))
    tables = native(store, ["n", "tags"], batch_size=3)
    assert [table.num_rows for table in tables] == [3] * 8 + [1]
    assert rows(tables) == [
        {"id": f"p{n:03d}", "change_seq": 1, "n": [str(n)], "tags": ["a", "b"]} for n in range(25)
    ]
    assert_same_as_default(store, ["n", "tags"], batch_size=3)
    assert_same_as_default(store, ["n"], batch_size=25)  # a full last page, then an empty one


def test_a_property_never_stored_is_a_null_list_column(store: PostgresStore) -> None:
    save(store, Profile("a", {"x": ["1"]}))
    (table,) = native(store, ["never", "x", "never"])
    assert table.column_names == ["id", "change_seq", "never", "x", "never"]
    assert table.schema.field(2).type == LIST
    assert table.column(2).to_pylist() == [None]
    assert table.column(3).to_pylist() == [["1"]]
    assert_same_as_default(store, ["never", "x", "never"])


def test_an_empty_store_and_no_properties(store: PostgresStore) -> None:
    assert native(store, ["x"]) == default(store, ["x"]) == []
    save(store, Profile("a", {"x": ["1"]}), Profile("b", {}))
    assert rows(native(store, [])) == [{"id": "a", "change_seq": 1}, {"id": "b", "change_seq": 1}]


@pytest.mark.parametrize("changed_after", [0, 1, 2, 3])
def test_changed_after_pages_by_change_then_id(store: PostgresStore, changed_after: int) -> None:
    save(store, *(Profile(f"p{n}", {"v": ["first"]}) for n in range(7)))  # change 1
    save(store, Profile("p5", {"v": ["second"]}), Profile("p1", {"v": ["second"]}))  # change 2
    save(store, Profile("p0", {"v": ["third"]}), Profile("p9", {"w": ["new"]}))  # change 3
    tables = native(store, ["v", "w"], changed_after=changed_after, batch_size=2)
    read = [(row["change_seq"], row["id"]) for row in rows(tables)]
    assert read == sorted(read)
    assert all(seq > changed_after for seq, _ in read)
    assert len(read) == {0: 8, 1: 4, 2: 2, 3: 0}[changed_after]
    assert_same_as_default(store, ["v", "w"], changed_after=changed_after, batch_size=2)


def test_a_property_another_store_added_after_this_one_read_its_columns(
    store: PostgresStore, postgres_url: str
) -> None:
    save(store, Profile("a", {"x": ["1"]}))
    assert rows(native(store, ["x", "late"])) == [
        {"id": "a", "change_seq": 1, "x": ["1"], "late": None}
    ]
    with PostgresStore(postgres_url) as other:
        save(other, Profile("b", {"late": ["from the other store"]}))
    assert rows(native(store, ["late"])) == [
        {"id": "a", "change_seq": 1, "late": None},
        {"id": "b", "change_seq": 2, "late": ["from the other store"]},
    ]


def test_a_property_added_between_pages_shows_on_a_later_page(
    store: PostgresStore, postgres_url: str
) -> None:
    save(store, *(Profile(f"p{n}", {"x": [str(n)]}) for n in range(4)))
    pages = store.profile_batches(["late"], batch_size=1)
    first = next(pages)  # the reader may read the next page ahead, not the one after
    with PostgresStore(postgres_url) as other:
        save(other, Profile("p3", {"x": ["3"], "late": ["now"]}))
    rest = list(pages)
    assert first.column("late").to_pylist() == [None]
    assert [table.column("id").to_pylist() for table in rest] == [["p1"], ["p2"], ["p3"]]
    assert rest[-1].column("late").to_pylist() == [["now"]]


def test_iter_profiles_run_often_still_reads_after_another_store_adds_a_column(
    store: PostgresStore, postgres_url: str
) -> None:
    # psycopg prepares a statement run 5 times on a connection; a prepared `SELECT *`
    # failed with "cached plan must not change result type" once a column was added
    save(store, Profile("a", {"x": ["1"]}))
    for _ in range(6):
        assert [p.id for p in store.iter_profiles()] == ["a"]
        assert store.get_profile("a") is not None
    with PostgresStore(postgres_url) as other:
        save(other, Profile("b", {"late": ["1"]}))
    assert [p.properties for p in store.iter_profiles()] == [{"x": ["1"]}, {"late": ["1"]}]
    assert store.get_profile("b") is not None
    assert_same_as_default(store, ["x", "late"])


def test_an_open_transaction_is_not_seen_as_iter_profiles_does_not_see_it(
    store: PostgresStore,
) -> None:
    save(store, Profile("a", {"x": ["1"]}))
    with store.transaction() as tx:
        tx.save_profiles([Profile("b", {"x": ["2"]}), Profile("a", {"x": ["changed"]})])
        read = rows(native(store, ["x"]))
        assert [row["id"] for row in read] == [p.id for p in store.iter_profiles()] == ["a"]
        assert read[0]["x"] == ["1"]
    assert [row["x"] for row in rows(native(store, ["x"]))] == [["changed"], ["2"]]


def test_a_value_longer_than_a_csv_block_reads_whole(store: PostgresStore) -> None:
    big = "x," * 700_000  # 1.4 MB in one cell: longer than pyarrow.csv's 1 MiB block
    save(store, Profile("a", {"big": [big, "y"]}), Profile("b", {"big": ['"']}))
    assert [row["big"] for row in rows(native(store, ["big"]))] == [[big, "y"], ['"']]


def test_closing_the_batches_early_stops_the_reader_thread(store: PostgresStore) -> None:
    save(store, *(Profile(f"p{n:03d}", {"x": [str(n)]}) for n in range(50)))
    pages = store.profile_batches(["x"], batch_size=10)
    assert next(pages).column("id").to_pylist()[0] == "p000"
    pages.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "postgres-profile-pages"]


def test_a_batch_size_below_one_is_refused(store: PostgresStore) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        store.profile_batches(["x"], batch_size=0)


# -- random profiles: the native read against the default ----------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
_NAMES = ["email", "tags", "a,b", 'q"uote', "naam klant"]
_PROFILES = st.dictionaries(
    st.text("pqr", min_size=1, max_size=4),
    st.dictionaries(
        st.sampled_from(_NAMES), st.lists(_TEXT | st.sampled_from(ODD_VALUES), max_size=4)
    ),
    max_size=12,
)


def test_random_profiles_read_as_the_default_reads_them(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            profiles=_PROFILES,
            batch_size=st.integers(1, 5),
            back=st.none() | st.integers(0, 3),
            names=st.lists(st.sampled_from([*_NAMES, "never"]), max_size=4),
        )
        def same(
            profiles: dict[str, dict[str, list[str]]],
            batch_size: int,
            back: int | None,
            names: list[str],
        ) -> None:
            with store.transaction() as tx:
                tx.delete_profiles([profile.id for profile in store.iter_profiles()])
            items = list(profiles.items())
            for half in (items[: len(items) // 2], items[len(items) // 2 :]):
                with store.transaction() as tx:
                    tx.save_profiles([Profile(pid, properties) for pid, properties in half])
            after = None if back is None else max(0, store.change_seq() - back)
            options = {"batch_size": batch_size, "changed_after": after}
            assert_same_as_default(store, names, **options)

        same()
