"""The columnar engine's write transaction: whole Arrow batches in, set-based writes.

`ProfileStore.batch_transaction()` opens one of these for one import file.
Values travel as `list<string>` columns, one per property (null: the
profile does not have it); how a backend keeps them (a text cell per
property in SQLite, `text[]` in PostgreSQL) is its own business. The rows
of a file and its ledger entry commit together, as in `StoreTransaction`:
each file exactly once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import pyarrow as pa

from connector.storage.records import LedgerEntry

Write = Callable[[], None]
"""A write whose bytes are built: it only runs statements on the transaction's connection."""


def no_write() -> None:
    """The write of an empty batch."""


class BatchTransaction(ABC):
    """Writes of one file that commit together when the `with` block ends."""

    writes_release_the_gil = False
    """Whether a piece's writes hold no GIL while they run (SQLite stepping natively,
    PostgreSQL waiting for its server), so that running them on a thread of their own
    overlaps them with the next piece's rules. A store whose driver takes the GIL back
    for every row would lose more to the handoffs."""

    @abstractmethod
    def prepare(self, properties: Sequence[str]) -> None:
        """Make room for these properties (columns) before the first batch is written."""

    @abstractmethod
    def lookup(self, match_property: str, keys: pa.Array, properties: Sequence[str]) -> pa.Table:
        """The existing profiles among distinct `keys` of a unique property (or profile ids).

        Columns: `key`, `id`, then one `list<string>` column per property with
        its current values. Keys without a profile are absent. A store may add
        one more column, last (its name is no property's business): where it
        finds each profile again faster than by its id (SQLite: the rowid). The
        engine hands it back to `encoded_update` as `places`.
        """

    @abstractmethod
    def encoded_insert(self, profiles: pa.Table, *, identifier: str | None) -> Write:
        """New profiles, in two steps: what needs no connection (the bytes the store reads)
        is built now, in the caller's thread; the write it returns runs later, where the
        connection is used. The engine calls this on its rules' thread, so that its writes'
        thread only writes.

        `profiles`: `id`, `key` and one `list<string>` column per property. With
        `identifier` (a unique property), `key` is recorded as the profile's value of
        it, so later batches and files find the profile.
        """

    @abstractmethod
    def encoded_update(self, profiles: pa.Table, places: pa.Array | None = None) -> Write:
        """Replace the given properties of existing profiles (`id` and property columns),
        in two steps as `encoded_insert`. `places`: the profiles' places from the last
        column a `lookup` added (null for a profile it did not give), or None."""

    def insert_profiles(self, profiles: pa.Table, *, identifier: str | None) -> None:
        """`encoded_insert`, written at once."""
        self.encoded_insert(profiles, identifier=identifier)()

    def update_profiles(self, profiles: pa.Table) -> None:
        """`encoded_update`, written at once."""
        self.encoded_update(profiles)()

    # -- groups (`connector.groups.columnar`) ------------------------------------------------
    @abstractmethod
    def load_groups(self, group_type: str, ids: pa.Array) -> pa.Table:
        """The existing groups among distinct `ids`: columns `id` and `properties`, the
        group's properties as one JSON object text ({property: [values]})."""

    @abstractmethod
    def save_groups(self, group_type: str, ids: pa.Array, patches: pa.Array) -> None:
        """Create the groups `ids`, or merge into each the properties of its JSON object
        `patches` (a property named there replaces the stored one; the others stay)."""

    @abstractmethod
    def resolve_profiles(self, property_name: str, values: pa.Array) -> pa.Table:
        """Profiles of distinct `values` of a unique property (or profile ids): columns
        `value` and `id`; values without a profile are absent."""

    @abstractmethod
    def add_members(self, group_type: str, groups: pa.Array, profiles: pa.Array) -> int:
        """Memberships (`groups[i]`, `profiles[i]`), existing ones kept; how many began.
        Profiles that joined are stamped with the change sequence (exports send them)."""

    @abstractmethod
    def replace_members(
        self, group_type: str, groups: pa.Array, member_groups: pa.Array, members: pa.Array
    ) -> tuple[int, int]:
        """Each of distinct `groups` has exactly the members paired with it (`member_groups`,
        `members`); (memberships that began, memberships that ended)."""

    @abstractmethod
    def delete_groups(self, group_type: str, groups: pa.Array) -> tuple[int, int]:
        """Remove the groups and their memberships: (groups deleted, memberships ended)."""

    @abstractmethod
    def record_file(self, entry: LedgerEntry) -> None:
        """Note in the ledger that a goal applied this version of a file."""

    @abstractmethod
    def changed_profiles(self) -> tuple[int, int]:
        """(change sequence of this transaction, distinct profiles it wrote)."""

    @abstractmethod
    def change_sequence(self) -> int:
        """The change sequence of this transaction, without counting its profiles (taken
        by `prepare`, or on first use)."""
