"""Reading profiles from their property columns into `Profile` records."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from connector.storage.postgres._columns import PropertyColumns
from connector.storage.postgres._db import Conn
from connector.storage.records import Profile

_FIXED = 4  # id, created_at, updated_at, change_seq: the columns before the properties


def fetch_profiles(
    conn: Conn,
    registry: PropertyColumns,
    condition: sql.Composable,
    params: Sequence[object] = (),
) -> list[Profile]:
    """`SELECT * FROM profiles <condition>` as profiles; absent (NULL) properties left out."""
    cursor = conn.execute(sql.SQL("SELECT * FROM profiles ") + condition, params)
    assert cursor.description is not None  # noqa: S101 -- a SELECT always describes its columns
    columns = [column.name for column in cursor.description[_FIXED:]]
    rows = cursor.fetchall()
    if not registry.knows_columns(columns):
        registry.refresh(conn)  # another process added a property since the cache was filled
    names = [registry.name_of(column) for column in columns]
    profiles = []
    for row in rows:
        properties = {
            name: list(values)
            for name, values in zip(names, row[_FIXED:], strict=True)
            if values is not None and name is not None
        }
        profiles.append(Profile(row[0], properties, row[1], row[2], row[3]))
    return profiles


def having_value(
    conn: Conn, registry: PropertyColumns, property_name: str
) -> sql.Composable | None:
    """The condition "has the value (one parameter) among `property_name`'s values", ordered by id.

    None when no profile ever had the property.
    """
    column = registry.column_of(property_name)
    if column is None:
        registry.refresh(conn)
        column = registry.column_of(property_name)
    if column is None:
        return None
    return sql.SQL("WHERE {} @> ARRAY[%s]::text[] ORDER BY id").format(sql.Identifier(column))
