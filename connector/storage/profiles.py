"""The profiles concern of the store: reading profiles, unique properties, change counts.

What it guarantees: a profile is read whole (every property it holds, its
change number); `iter_profiles` and `profile_batches` stream in a stable
order, so a reader never holds the whole store; a unique property maps each
value to at most one profile. Profiles are written only through a
transaction (`connector.storage.transaction`, `connector.storage.batches`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence

import pyarrow as pa

from connector.limits import PROFILE_BATCH_ROWS, STORE_PAGE_ROWS
from connector.storage.records import Profile

PROFILE_ID = "profile_id"
"""Resolving by this property name means the values are profile ids."""
AMONG_SLICE = 100_000
"""Ids a statement of `count_changed_among` takes at once."""


class StoredProfiles(ABC):
    """Profiles as stored: read them, declare unique properties, count what changed."""

    # -- unique properties ---------------------------------------------------
    @abstractmethod
    def ensure_unique_properties(self, names: Collection[str]) -> None:
        """Declare properties whose values identify one profile, indexing existing values."""

    @abstractmethod
    def unique_properties(self) -> frozenset[str]:
        """The properties declared unique."""

    @abstractmethod
    def key_normalization(self, name: str) -> str:
        """How the stored values of unique property `name` are normalised (`match.normalize`);
        "trim" for a property never declared otherwise."""

    @abstractmethod
    def identifier_values(self, name: str) -> Iterator[tuple[str, str]]:
        """Every (value, profile id) of unique property `name`."""

    # -- reading profiles ----------------------------------------------------
    @abstractmethod
    def get_profile(self, profile_id: str) -> Profile | None: ...

    @abstractmethod
    def find_profiles(self, property_name: str, value: str) -> list[Profile]:
        """Profiles with `value` among the values of `property_name`."""

    @abstractmethod
    def iter_profiles(
        self, *, changed_after: int | None = None, batch_size: int = STORE_PAGE_ROWS
    ) -> Iterator[Profile]:
        """Every profile (or those changed after a sequence number), streamed in batches."""

    def profile_batches(
        self,
        properties: Sequence[str],
        *,
        changed_after: int | None = None,
        batch_size: int = PROFILE_BATCH_ROWS,
    ) -> Iterator[pa.Table]:
        """Profiles as Arrow tables, in the order of `iter_profiles`, for columnar readers.

        Columns: `id` (string), `change_seq` (int64), then one `list<string>`
        column per requested property, named after it (null when the profile
        has no value). A store with columns per property overrides this with a
        native read; this default builds the tables from `iter_profiles`.
        """
        ids: list[str] = []
        seqs: list[int] = []
        values: list[list[list[str] | None]] = [[] for _ in properties]

        def table() -> pa.Table:
            arrays = [pa.array(ids, pa.string()), pa.array(seqs, pa.int64())]
            arrays += [pa.array(column, pa.list_(pa.string())) for column in values]
            return pa.Table.from_arrays(arrays, names=["id", "change_seq", *properties])

        for profile in self.iter_profiles(changed_after=changed_after, batch_size=batch_size):
            ids.append(profile.id)
            seqs.append(profile.change_seq)
            for column, name in zip(values, properties, strict=True):
                column.append(profile.properties.get(name) or None)
            if len(ids) >= batch_size:
                yield table()
                ids, seqs, values = [], [], [[] for _ in properties]
        if ids:
            yield table()

    @abstractmethod
    def count_profiles(self) -> int: ...

    # -- change counts -------------------------------------------------------
    @abstractmethod
    def change_seq(self) -> int:
        """The latest committed change sequence number."""

    @abstractmethod
    def count_profiles_changed_in(self, change_seqs: Collection[int]) -> int:
        """Profiles whose latest change carries one of these sequence numbers."""

    @abstractmethod
    def count_changed_among(self, change_seqs: Collection[int], ids: pa.Array) -> int:
        """Of the distinct profile `ids` (Arrow strings), those whose latest change carries
        one of these sequence numbers: what a run's imports and exports have in common.
        Read in slices, so a large export never becomes one list of Python strings."""


def id_slices(ids: pa.Array) -> Iterator[list[str]]:
    """`ids` as lists of at most `AMONG_SLICE` strings, one statement's worth each."""
    for start in range(0, len(ids), AMONG_SLICE):
        yield ids.slice(start, AMONG_SLICE).to_pylist()
