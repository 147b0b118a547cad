"""The SQLite store's schema: numbered SQL scripts in `migrations/`, applied on open.

`PRAGMA user_version` holds the number of the last script applied. A store
newer than this connector is refused rather than misread; migration 2 also
has a part SQL cannot do (JSON documents into property columns).
"""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from connector.errors import StoreError
from connector.storage import _json
from connector.storage.columns import PropertyColumns, encode_values
from connector.storage.sqlite._db import placeholders


def migrations() -> list[tuple[int, str]]:
    """(number, SQL) of every script in `migrations/`, in order."""
    folder = resources.files("connector.storage.sqlite") / "migrations"
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(scripts)


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the store at `path` (open on `db`) to the latest schema, in one transaction."""
    scripts = migrations()
    latest = scripts[-1][0] if scripts else 0
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > latest:
        raise StoreError(
            f"the profile store {path} has schema version {version}, newer than "
            f"this connector knows ({latest}); upgrade connector to open it"
        )
    if version == latest and not _has_json_profiles(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # read again under the write lock: another process may have migrated meanwhile
        (version,) = db.execute("PRAGMA user_version").fetchone()
        for number, script in scripts:
            if number <= version:
                continue
            for statement in script.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
        if _has_json_profiles(db):
            _convert_json_profiles(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _has_json_profiles(db: sqlite3.Connection) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'profiles_json'"
    ).fetchone()
    return row is not None


def _convert_json_profiles(db: sqlite3.Connection) -> None:
    """Migration 2, the part SQL cannot do: JSON documents into property columns.

    Runs inside the migration's transaction: a store is converted whole or
    not at all, and opened again converts again.
    """
    columns = PropertyColumns()
    select = "SELECT id, properties, created_at, updated_at, change_seq FROM profiles_json"
    rows = db.execute(f"{select} ORDER BY id LIMIT 5000").fetchall()
    while rows:
        documents = [(row, _json.loads(row[1])) for row in rows]
        names = columns.ensure(db, (n for _, doc in documents for n in doc))
        for (pid, _, created, updated, seq), doc in documents:
            cols = [names[name] for name in doc]
            values = [encode_values(values) for values in doc.values()]
            fields = ", ".join(
                f'"{col}"' for col in ["id", "created_at", "updated_at", "change_seq", *cols]
            )
            db.execute(
                f"INSERT INTO profiles ({fields}) VALUES ({placeholders(4 + len(cols))})",
                (pid, created, updated, seq, *values),
            )
        rows = db.execute(
            f"{select} WHERE id > ? ORDER BY id LIMIT 5000", (rows[-1][0],)
        ).fetchall()
    db.execute("DROP TABLE profiles_json")
