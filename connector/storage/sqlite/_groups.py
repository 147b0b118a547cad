"""The groups concern in SQLite: a group with its members, the groups of profiles."""

from __future__ import annotations

from collections.abc import Collection

from connector.storage import _json
from connector.storage.groups import StoredGroups
from connector.storage.records import Group
from connector.storage.sqlite._db import Session, chunks, placeholders, time_of


class SQLiteGroups(Session, StoredGroups):
    """`StoredGroups` on the store's connection."""

    def get_group(self, group_type: str, group_id: str) -> Group | None:
        row = self._db.execute(
            "SELECT type, id, properties, created_at, updated_at FROM groups WHERE type = ? AND id = ?",
            (group_type, group_id),
        ).fetchone()
        if row is None:
            return None
        members = [
            profile_id
            for (profile_id,) in self._db.execute(
                "SELECT profile_id FROM group_members WHERE type = ? AND group_id = ? ORDER BY profile_id",
                (group_type, group_id),
            )
        ]
        return Group(row[0], row[1], _json.loads(row[2]), members, time_of(row[3]), time_of(row[4]))

    def groups_of_profile(self, profile_id: str) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for group_type, group_id in self._db.execute(
            "SELECT type, group_id FROM group_members WHERE profile_id = ? ORDER BY type, group_id",
            (profile_id,),
        ):
            result.setdefault(group_type, []).append(group_id)
        return result

    def groups_of_profiles(
        self, profile_ids: Collection[str], group_type: str
    ) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for chunk in chunks(list(dict.fromkeys(profile_ids))):
            for profile_id, group_id in self._db.execute(
                f"SELECT profile_id, group_id FROM group_members WHERE type = ? "
                f"AND profile_id IN ({placeholders(len(chunk))}) ORDER BY group_id",
                (group_type, *chunk),
            ):
                result.setdefault(profile_id, []).append(group_id)
        return result
