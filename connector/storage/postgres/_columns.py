"""Which `profiles` column (p1, p2, ...) holds which property, and adding one when needed.

Columns are named by number, never by the property: any text is a valid
property name ("address.city", "naam klant"), and none ends up in SQL.
A column is added inside the writing transaction, under a lock on the
registry, so two writers adding the same property do not race; the
ALTER TABLE waits for other transactions that use `profiles` to end.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from psycopg import sql

from connector.storage.postgres._db import Conn


class PropertyColumns:
    """A cache of the registry; refreshed when a name or column is not in it."""

    def __init__(self) -> None:
        self._by_name: dict[str, str] = {}
        self._by_column: dict[str, str] = {}

    def refresh(self, conn: Conn) -> None:
        rows = conn.execute("SELECT name, col FROM properties ORDER BY length(col), col").fetchall()
        self._by_name = {str(name): str(col) for name, col in rows}
        self._by_column = {col: name for name, col in self._by_name.items()}

    def names(self) -> list[str]:
        """Every registered property, in the order its column was added."""
        return list(self._by_name)

    def column_of(self, name: str) -> str | None:
        return self._by_name.get(name)

    def name_of(self, column: str) -> str | None:
        return self._by_column.get(column)

    def columns(self) -> list[str]:
        return list(self._by_column)

    def knows_columns(self, columns: Sequence[str]) -> bool:
        """Whether every property column of a result is in the cache."""
        return all(column in self._by_column for column in columns)

    def ensure(self, conn: Conn, names: Collection[str]) -> None:
        """Register and add a column for each name that has none (inside a transaction)."""
        if all(name in self._by_name for name in names):
            return
        conn.execute("LOCK TABLE properties IN SHARE ROW EXCLUSIVE MODE")
        self.refresh(conn)
        for name in sorted(set(names) - self._by_name.keys()):
            row = conn.execute("SELECT 'p' || nextval('property_columns')").fetchone()
            assert row is not None  # noqa: S101 -- nextval always returns a row
            column = str(row[0])
            conn.execute("INSERT INTO properties (name, col) VALUES (%s, %s)", (name, column))
            conn.execute(
                sql.SQL("ALTER TABLE profiles ADD COLUMN {} text[]").format(sql.Identifier(column))
            )
            self._by_name[name] = column
            self._by_column[column] = name

    def forget(self) -> None:
        """Drop the cache (after a rolled-back transaction that may have added columns)."""
        self._by_name = {}
        self._by_column = {}
