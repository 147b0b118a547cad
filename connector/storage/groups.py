"""The groups concern of the store: households, companies, accounts and their members.

What it guarantees: a group is read with its properties and its members in
profile id order. Groups and memberships are written only through a
transaction; a membership that begins or ends stamps the profile with the
transaction's change number, so incremental exports send its group columns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection

from connector.storage.records import Group


class StoredGroups(ABC):
    """Groups as stored, and the groups of profiles (for export columns)."""

    @abstractmethod
    def get_group(self, group_type: str, group_id: str) -> Group | None:
        """A group with its properties and member profile ids."""

    @abstractmethod
    def groups_of_profile(self, profile_id: str) -> dict[str, list[str]]:
        """The groups a profile belongs to, as {group type: [group ids]}."""

    @abstractmethod
    def groups_of_profiles(
        self, profile_ids: Collection[str], group_type: str
    ) -> dict[str, list[str]]:
        """For a batch of profiles, their group ids of one type (for export columns)."""
