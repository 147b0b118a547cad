"""The groups concern in PostgreSQL: a group with its members, the groups of profiles."""

from __future__ import annotations

from collections.abc import Collection

from connector.storage.groups import StoredGroups
from connector.storage.postgres._session import Session
from connector.storage.records import Group


class PostgresGroups(Session, StoredGroups):
    """`StoredGroups` on the store's pool."""

    def get_group(self, group_type: str, group_id: str) -> Group | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT type, id, properties, created_at, updated_at FROM groups "
                "WHERE type = %s AND id = %s",
                (group_type, group_id),
            ).fetchone()
            if row is None:
                return None
            members = conn.execute(
                "SELECT profile_id FROM group_members WHERE type = %s AND group_id = %s "
                "ORDER BY profile_id",
                (group_type, group_id),
            ).fetchall()
        return Group(row[0], row[1], row[2], [str(m) for (m,) in members], row[3], row[4])

    def groups_of_profile(self, profile_id: str) -> dict[str, list[str]]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT type, group_id FROM group_members WHERE profile_id = %s "
                "ORDER BY type, group_id",
                (profile_id,),
            ).fetchall()
        result: dict[str, list[str]] = {}
        for group_type, group_id in rows:
            result.setdefault(group_type, []).append(group_id)
        return result

    def groups_of_profiles(
        self, profile_ids: Collection[str], group_type: str
    ) -> dict[str, list[str]]:
        ids = list(dict.fromkeys(profile_ids))
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT profile_id, group_id FROM group_members WHERE type = %s "
                "AND profile_id = ANY(%s) ORDER BY group_id",
                (group_type, ids),
            ).fetchall()
        result: dict[str, list[str]] = {}
        for profile_id, group_id in rows:
            result.setdefault(profile_id, []).append(group_id)
        return result
