"""New profiles' identifiers written by the engine's batch transaction, on both stores.

A lookup sends its keys to SQLite as one JSON text built by Arrow, and takes
a temporary table for a key JSON would need a `\\u` escape for: any text,
either way, must find the profile it was written with.
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


def _new_profiles(keys: list[str]) -> pa.Table:
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "id": pa.array([f"id-{i}-{key}" for i, key in enumerate(keys)], pa.string()),
            "customer_id": pa.array([[key] for key in keys], LIST),
        }
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(texts=st.lists(AWKWARD, min_size=1, max_size=6, unique=True))
def test_any_key_of_a_new_profile_is_found_again_by_its_identifier(
    store: ProfileStore, texts: list[str]
) -> None:
    run = next(_numbers)
    store.ensure_unique_properties(["customer_id"])
    keys = [f"{run}:{text}" for text in texts]
    profiles = _new_profiles(keys)
    with store.batch_transaction() as tx:
        tx.prepare(["customer_id"])
        tx.insert_profiles(profiles, identifier="customer_id")
        found = tx.lookup("customer_id", pa.array(keys), ["customer_id"])
        tx.record_file(LedgerEntry("crm", "in", f"f{run}", '"e"', "fp", 1, datetime.now(UTC), None))
    ids = dict(zip(keys, profiles["id"].to_pylist(), strict=True))
    assert dict(zip(found["key"].to_pylist(), found["id"].to_pylist(), strict=True)) == ids
    for key, profile_id in ids.items():
        assert [profile.id for profile in store.find_profiles("customer_id", key)] == [profile_id]
