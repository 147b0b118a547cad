"""One column per property: the registry that names them, and how a value list is kept.

Property names are whatever a goal file says (spaces, dots, any script), so
they never become SQL identifiers: the `properties` table maps each name to a
generated column (`p1`, `p2`, ...), added the first time a property is
written. A multi-valued property is one text cell holding its values joined
by U+001F (the ASCII unit separator), so a single value is stored as itself
and the common reads and writes need no JSON; a value that itself contains
U+001F is refused on write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from connector.errors import StoreError

VALUE_SEPARATOR = "\x1f"
"""Between the values of a multi-valued property in its column."""
NO_VALUES = "\x1e"
"""A property present with an empty list of values (only ever written through the API)."""


def encode_values(values: list[str] | None) -> str | None:
    """A property's values as one cell (None: the profile does not have the property)."""
    if values is None:
        return None
    if not values:
        return NO_VALUES
    for value in values:
        if VALUE_SEPARATOR in value or value == NO_VALUES:
            raise StoreError(f"value {value[:40]!r} contains U+001F, which the store reserves")
    return values[0] if len(values) == 1 else VALUE_SEPARATOR.join(values)


def decode_values(cell: str | None) -> list[str]:
    if cell is None or cell == NO_VALUES:
        return []
    return cell.split(VALUE_SEPARATOR)


class PropertyColumns:
    """The name -> column registry of one store connection, cached and re-read on a miss.

    Another process may add a property at any time; a reader re-reads the
    registry when a name it needs is unknown (`refresh`), and a writer adds
    columns inside its own write transaction, after re-reading under the lock.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, str] = {}

    def refresh(self, db: sqlite3.Connection) -> dict[str, str]:
        rows = db.execute("SELECT name, col FROM properties ORDER BY rowid").fetchall()
        self.by_name = dict(rows)
        return self.by_name

    def ensure(self, db: sqlite3.Connection, names: Iterable[str]) -> dict[str, str]:
        """Add a column for each new name (call inside a write transaction)."""
        missing = [name for name in dict.fromkeys(names) if name not in self.by_name]
        if not missing:
            return self.by_name
        self.refresh(db)
        for name in missing:
            if name in self.by_name:
                continue
            (count,) = db.execute("SELECT count(*) FROM properties").fetchone()
            column = f"p{int(count) + 1}"
            db.execute(f'ALTER TABLE profiles ADD COLUMN "{column}" TEXT')
            db.execute("INSERT INTO properties (name, col) VALUES (?, ?)", (name, column))
            self.by_name[name] = column
        return self.by_name
