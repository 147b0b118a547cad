"""The columnar engine's PostgreSQL transaction: exact values through COPY, one file at a time.

The engine's own results on PostgreSQL are compared with the row path in
tests/engine/test_import_oracle.py; these tests pin what that oracle's
plain values cannot reach: any text through the hand-built COPY bytes, new
columns added without deadlocking a running import, and all-or-nothing files.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import StoreError
from connector.storage import PROFILE_ID
from connector.storage.postgres import PostgresStore
from connector.storage.postgres._copy import json_lists
from connector.storage.records import LedgerEntry

pytestmark = pytest.mark.postgres

LIST = pa.list_(pa.string())
AWKWARD = st.text(
    alphabet=st.sampled_from(
        ['"', "\\", ",", "{", "}", "\t", "\n", "\r", " ", "a", "é", "N", "😀"]
    ),
    max_size=6,
) | st.sampled_from(["NULL", "", "\\N", '{"a"}', "\\."])
_numbers = itertools.count()


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(postgres_url) as opened:
        opened.ensure_unique_properties(["customer_id"])
        yield opened


def entry(key: str) -> LedgerEntry:
    return LedgerEntry("crm", "in", key, '"e"', "fp", 1, datetime.now(UTC), None)


def new_profiles(keys: list[str], values: list[list[str] | None]) -> pa.Table:
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "id": pa.array([f"id-{key}" for key in keys], pa.string()),
            "customer_id": pa.array([[key] for key in keys], LIST),
            "notes": pa.array(values, LIST),
        }
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(st.none() | st.lists(AWKWARD, max_size=3), min_size=1, max_size=5))
def test_any_text_goes_in_by_copy_and_comes_back_from_a_lookup_unchanged(
    store: PostgresStore, values: list[list[str] | None]
) -> None:
    run = next(_numbers)
    keys = [f'k{run}-{i}\t"\\,' for i in range(len(values))]
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(new_profiles(keys, values), identifier="customer_id")
        found = tx.lookup("customer_id", pa.array(keys), ["notes"])
        by_id = tx.lookup(PROFILE_ID, pa.array([f"id-{key}" for key in keys]), ["notes"])
        tx.record_file(entry(f"f{run}"))
    # a lookup reads an empty list as no value, as the SQLite store does
    expected = {key: value or None for key, value in zip(keys, values, strict=True)}
    assert dict(zip(found["key"].to_pylist(), found["notes"].to_pylist(), strict=True)) == expected
    assert sorted(by_id["key"].to_pylist()) == sorted(f"id-{key}" for key in keys)
    for key, value in zip(keys, values, strict=True):
        profile = store.get_profile(f"id-{key}")
        assert profile is not None
        assert profile.properties.get("notes") == value
        assert store.find_profiles("customer_id", key) == [profile]


def test_a_lookup_returns_each_stored_key_once_and_nothing_for_the_rest(
    store: PostgresStore,
) -> None:
    keys = ["C1", "C2", "C3"]
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(new_profiles(keys, [["a"], None, ["c"]]), identifier="customer_id")
        asked = pa.array(["C3", "nope", "C1", "C2", ""])
        found = tx.lookup("customer_id", asked, ["notes"])
        by_id = tx.lookup(PROFILE_ID, pa.array(["id-C2", "id-nope", "id-C1"]), ["notes"])
        tx.record_file(entry("lookups"))
    assert sorted(zip(found["key"].to_pylist(), found["id"].to_pylist(), strict=True)) == [
        ("C1", "id-C1"),
        ("C2", "id-C2"),
        ("C3", "id-C3"),
    ]
    assert dict(zip(found["key"].to_pylist(), found["notes"].to_pylist(), strict=True)) == {
        "C1": ["a"],
        "C2": None,
        "C3": ["c"],
    }
    assert sorted(by_id["key"].to_pylist()) == ["id-C1", "id-C2"]
    assert by_id["key"].to_pylist() == by_id["id"].to_pylist()


def test_every_store_session_runs_without_jit(store: PostgresStore) -> None:
    # compiling took longer than the engine's per-batch statements themselves
    with store._conn() as pooled:
        assert pooled.execute("SHOW jit").fetchone() == ("off",)
    with store._connect() as own:
        assert own.execute("SHOW jit").fetchone() == ("off",)


def test_json_arrays_with_escapes_take_the_exact_path() -> None:
    texts = pa.array(['["a","b"]', '["x\\"y","\\\\"]', None, '[""]', '["\\u0001"]'])
    assert json_lists(texts).to_pylist() == [["a", "b"], ['x"y', "\\"], None, [""], ["\x01"]]


def test_an_escaped_quote_before_a_comma_and_quote_is_not_a_separator() -> None:
    # found by the batch-identifiers test: the value `",` is written `"\\","`
    texts = pa.array(['["\\",",""]', '["a\\\\","b"]', '["x\\",\\"y"]', '["\\",","\\","]'])
    assert json_lists(texts).to_pylist() == [
        ['",', ""],
        ["a\\", "b"],
        ['x","y'],
        ['",', '",'],
    ]


def test_an_update_replaces_only_the_given_properties_and_stamps_one_change(
    store: PostgresStore,
) -> None:
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(new_profiles(["C1", "C2"], [["a"], ["b"]]), identifier="customer_id")
        tx.record_file(entry("one"))
        first, created = tx.changed_profiles()
    assert created == 2
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.update_profiles(pa.table({"id": ["id-C2"], "notes": pa.array([["b", "c"]], LIST)}))
        tx.record_file(entry("two"))
        second, touched = tx.changed_profiles()
    assert (second > first, touched) == (True, 1)
    updated = store.get_profile("id-C2")
    assert updated is not None
    assert updated.properties == {"customer_id": ["C2"], "notes": ["b", "c"]}
    assert updated.change_seq == second
    assert store.change_seq() == second
    assert set(store.ledger("crm", "in")) == {"one", "two"}


def test_a_failed_file_leaves_no_profile_no_ledger_entry_and_no_staged_rows(
    store: PostgresStore,
) -> None:
    def killed_mid_file() -> None:
        with store.batch_transaction() as tx:
            tx.prepare(["customer_id", "notes"])
            tx.insert_profiles(new_profiles(["C1"], [["a"]]), identifier="customer_id")
            tx.record_file(entry("bad"))
            raise RuntimeError("killed mid-file")

    with pytest.raises(RuntimeError):
        killed_mid_file()
    assert store.count_profiles() == 0
    assert store.ledger("crm", "in") == {}
    # the next file on the same pooled session stages from empty tables
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(new_profiles(["C2"], [["b"]]), identifier="customer_id")
        tx.insert_profiles(new_profiles(["C3"], [["c"]]), identifier="customer_id")
        tx.record_file(entry("good"))
        assert tx.changed_profiles()[1] == 2
    assert store.count_profiles() == 2


def test_a_unique_value_taken_by_another_profile_fails_the_file(store: PostgresStore) -> None:
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(new_profiles(["C1"], [["a"]]), identifier="customer_id")
    clash = new_profiles(["C1"], [["b"]]).set_column(1, "id", pa.array(["other"]))

    def import_the_clash() -> None:
        with store.batch_transaction() as tx:
            tx.prepare(["customer_id", "notes"])
            tx.insert_profiles(clash, identifier="customer_id")

    with pytest.raises(
        StoreError, match=r"unique value is taken \(Key \(property, value\)=\(customer_id, C1\)"
    ):
        import_the_clash()
    assert store.count_profiles() == 1


def test_a_new_property_waits_for_a_running_import_instead_of_deadlocking(
    postgres_url: str,
) -> None:
    """Each daemon adds its file's columns before its transaction, never inside it."""
    with PostgresStore(postgres_url) as first, PostgresStore(postgres_url) as second:
        done: list[str] = []
        failures: list[BaseException] = []

        def other_daemon() -> None:
            try:
                with second.batch_transaction() as tx:
                    tx.prepare(["city"])
                    tx.insert_profiles(
                        pa.table({"key": ["p2"], "id": ["p2"], "city": pa.array([["X"]], LIST)}),
                        identifier=None,
                    )
                    tx.record_file(entry("second"))
                done.append("second")
            except BaseException as error:  # handed to the test thread
                failures.append(error)

        with first.batch_transaction() as tx:
            tx.prepare(["email"])
            thread = threading.Thread(target=other_daemon)
            thread.start()
            thread.join(timeout=1)  # it waits to add its column while this file runs
            assert thread.is_alive()
            tx.insert_profiles(
                pa.table({"key": ["p1"], "id": ["p1"], "email": pa.array([["a@x"]], LIST)}),
                identifier=None,
            )
            tx.prepare(["email"])  # a column this file added already: no DDL inside
            tx.record_file(entry("first"))
        thread.join(timeout=30)
        assert failures == []
        assert done == ["second"]
        one, two = first.get_profile("p1"), first.get_profile("p2")
        assert one is not None
        assert two is not None
        assert (one.properties, two.properties) == ({"email": ["a@x"]}, {"city": ["X"]})
        assert set(first.ledger("crm", "in")) == {"first", "second"}
