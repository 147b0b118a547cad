"""The engine's batch transaction writes new profiles and finds them again, on both stores.

A lookup sends its keys to SQLite as one JSON text built by Arrow (or a
temporary table for a key JSON would need a `\\u` escape for) and reads the
profiles it finds back as JSON lines: any text, keys and values alike, must
come back exactly, with the profile it was written with.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.storage import ProfileStore
from connector.storage.records import LedgerEntry

LIST = pa.list_(pa.string())
AWKWARD = st.text(
    alphabet=st.sampled_from(['"', "\\", ",", "[", "]", "\t", "\x01", " ", "a", "é", "😀"]),
    max_size=6,
)
_numbers = itertools.count()


def _new_profiles(keys: list[str], notes: list[list[str] | None]) -> pa.Table:
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "id": pa.array([f"id-{i}-{key}" for i, key in enumerate(keys)], pa.string()),
            "customer_id": pa.array([[key] for key in keys], LIST),
            "notes": pa.array(notes, LIST),
        }
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    texts=st.lists(AWKWARD, min_size=1, max_size=6, unique=True),
    notes=st.lists(st.none() | st.lists(AWKWARD, min_size=1, max_size=3), min_size=6, max_size=6),
)
def test_any_key_and_value_of_a_new_profile_is_found_again_by_its_identifier(
    store: ProfileStore, texts: list[str], notes: list[list[str] | None]
) -> None:
    run = next(_numbers)
    store.ensure_unique_properties(["customer_id"])
    keys = [f"{run}:{text}" for text in texts]
    profiles = _new_profiles(keys, notes[: len(keys)])
    absent = f"{run}:absent"
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(profiles, identifier="customer_id")
        found = tx.lookup("customer_id", pa.array([*keys, absent]), ["customer_id", "notes"])
        nothing = tx.lookup("customer_id", pa.array([absent]), ["notes"])
        tx.record_file(LedgerEntry("crm", "in", f"f{run}", '"e"', "fp", 1, datetime.now(UTC), None))
    ids = dict(zip(keys, profiles["id"].to_pylist(), strict=True))
    assert dict(zip(found["key"].to_pylist(), found["id"].to_pylist(), strict=True)) == ids
    by_key = {row["key"]: row for row in found.to_pylist()}
    for key, note in zip(keys, notes, strict=False):
        assert by_key[key]["customer_id"] == [key]
        assert by_key[key]["notes"] == note
    assert nothing.num_rows == 0
    assert nothing.column_names[:3] == ["key", "id", "notes"]
    assert len(nothing.column_names) <= 4  # a store may add its own last column (SQLite: rowid)
    for key, profile_id in ids.items():
        assert [profile.id for profile in store.find_profiles("customer_id", key)] == [profile_id]


def test_a_null_key_finds_nothing_and_the_other_keys_their_profiles(store: ProfileStore) -> None:
    # null keys never reach a lookup from an import (a row without a key is rejected
    # first), but the interface takes any string array: a null matches no profile
    store.ensure_unique_properties(["customer_id"])
    keys = ["n:a", "n:b"]
    profiles = _new_profiles(keys, [["x"], None])
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id", "notes"])
        tx.insert_profiles(profiles, identifier="customer_id")
        found = tx.lookup("customer_id", pa.array(["n:a", None, "n:b"], pa.string()), ["notes"])
        only_null = tx.lookup("customer_id", pa.array([None], pa.string()), ["notes"])
        tx.record_file(LedgerEntry("crm", "in", "nulls", '"e"', "fp", 1, datetime.now(UTC), None))
    assert sorted(zip(found["key"].to_pylist(), found["notes"].to_pylist(), strict=True)) == [
        ("n:a", ["x"]),
        ("n:b", None),
    ]
    assert only_null.num_rows == 0
