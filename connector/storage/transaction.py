"""The row path's write transaction: profiles, groups, contributions and the ledger entry.

What it guarantees: everything written inside one `ProfileStore.transaction()`
commits together when the `with` block ends, or rolls back on error. An
import applies a whole file and its ledger entry in one transaction: that is
what makes "each file exactly once" hold when the process is killed at any
moment. Every write stamps the profiles it touches with the transaction's one
change number, so incremental exports find them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping

from connector.storage.records import Contribution, FileKey, Group, LedgerEntry, Profile


class StoreTransaction(ABC):
    """Writes that commit together when the `with` block ends, or roll back on error."""

    # -- profiles ------------------------------------------------------------
    @abstractmethod
    def resolve_profiles(self, property_name: str, values: Collection[str]) -> dict[str, str]:
        """Map each value of a unique property (or profile id) to the profile that holds it."""

    @abstractmethod
    def load_profiles(self, profile_ids: Collection[str]) -> dict[str, Profile]:
        """The existing profiles among `profile_ids`."""

    @abstractmethod
    def save_profiles(self, profiles: Iterable[Profile]) -> int:
        """Insert or replace whole profiles; stamps a new change sequence. Returns the count.

        The unique-identifier index follows the saved values.
        """

    @abstractmethod
    def delete_profiles(self, profile_ids: Collection[str]) -> int:
        """Remove profiles, their identifiers and memberships. Returns how many existed."""

    @abstractmethod
    def set_key_normalization(self, name: str, mode: str) -> None:
        """Record that the stored values of unique property `name` now follow `mode`."""

    # -- groups --------------------------------------------------------------
    @abstractmethod
    def load_groups(self, group_type: str, group_ids: Collection[str]) -> dict[str, Group]:
        """The existing groups among `group_ids` (members not loaded)."""

    @abstractmethod
    def save_groups(self, groups: Iterable[Group]) -> int:
        """Insert or replace groups' properties (not members). Returns the count."""

    @abstractmethod
    def add_members(self, group_type: str, memberships: Iterable[tuple[str, str]]) -> int:
        """Add (group id, profile id) pairs; existing pairs are kept. Returns pairs added.

        A profile that joins a group is stamped with this transaction's change
        sequence: its group columns changed, so incremental exports include it.
        """

    @abstractmethod
    def replace_members(
        self, group_type: str, members: Mapping[str, Collection[str]]
    ) -> tuple[int, int]:
        """Make each group's members exactly the given profile ids; (joined, left).

        Profiles that join or leave are stamped with this transaction's change
        sequence, as `add_members` does.
        """

    @abstractmethod
    def delete_groups(self, group_type: str, group_ids: Collection[str]) -> tuple[int, int]:
        """Remove groups and their memberships (leavers stamped); (groups, memberships)."""

    # -- the file: its ledger entry and what it contributed ------------------
    @abstractmethod
    def record_file(self, entry: LedgerEntry) -> None:
        """Note in the ledger that a goal applied this version of a file."""

    @abstractmethod
    def file_contributions(self, file: FileKey) -> list[Contribution]:
        """What the version of `file` applied last contributed (`on_change: replace`)."""

    @abstractmethod
    def replace_file_contributions(
        self, file: FileKey, contributions: Iterable[Contribution]
    ) -> None:
        """Forget what `file` contributed before; remember `contributions` instead."""

    @abstractmethod
    def hand_over(
        self, file: FileKey, kind: str, slots: Collection[tuple[str, str, str]]
    ) -> set[tuple[str, str, str]]:
        """Of the (profile id, property, value) that `file` brought into a profile, those
        another file's latest version contributes to as well (`kind` "add": the same value;
        "sum": any total, the value is ignored). Those stay; from now on the other files
        count as having brought them, so withdrawing the last of them takes them away."""

    @abstractmethod
    def change_sequence(self) -> int:
        """The change sequence of this transaction (taken on first use), without counting
        its profiles."""

    @abstractmethod
    def changed_profiles(self) -> tuple[int, int]:
        """(change sequence of this transaction, profiles it has written so far).

        Distinct profiles, however often each was saved: the exact "profiles
        touched by this file" count without keeping their ids in memory.
        """


def identifier_conflict(
    fresh: Iterable[tuple[str, str, str]], holder_of: Callable[[str, str], str | None]
) -> str:
    """Which unique value two profiles claim, after a failed identifier insert.

    `fresh` holds the (property, value, profile id) the transaction tried to
    index; `holder_of(property, value)` reads the profile that holds it now.
    """
    for name, value, profile_id in fresh:
        holder = holder_of(name, value)
        if holder is not None and holder != profile_id:
            return (
                f"unique property {name!r} value {value!r} belongs to profile {holder!r}; "
                f"profile {profile_id!r} cannot have it too"
            )
    return "a unique property value belongs to two profiles"
