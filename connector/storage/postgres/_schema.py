"""Versioned migrations of the PostgreSQL store, run once however many daemons start at once."""

from __future__ import annotations

from importlib import resources

from connector.errors import StoreError
from connector.storage.postgres._db import Conn
from connector.storage.postgres._keys import bigint_key


def migrations() -> list[tuple[int, str]]:
    """(version, script) of every migration shipped, oldest first."""
    folder = resources.files("connector.storage.postgres") / "migrations"
    scripts = [
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(scripts)


def migrate(conn: Conn, schema: str, where: str) -> int:
    """Bring the schema to the latest version under an advisory lock; returns that version.

    The lock serialises daemons starting together: the second reads the
    version again once the first has committed, and finds nothing to do.
    """
    scripts = migrations()
    latest = scripts[-1][0] if scripts else 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (bigint_key("migrate", schema),))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        version = int(row[0]) if row else 0
        if version > latest:
            raise StoreError(
                f"the profile store {where} has schema version {version}, newer than this "
                f"connector knows ({latest}); upgrade connector to open it"
            )
        for number, script in scripts:
            if number > version:
                conn.execute(script.encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    return latest


def schema_version(conn: Conn) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def has_store(conn: Conn, schema: str) -> bool:
    """Whether `schema` holds a connector store (a migrated `schema_version`); reads only."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.schema_version', %s::text)) IS NOT NULL", (schema,)
    ).fetchone()
    return bool(row and row[0]) and schema_version(conn) > 0
