"""The embedded store: one SQLite file in WAL mode.

WAL lets `connector profiles ...` and `connector history` read while a run
writes. A file's rows and its ledger entry share one transaction, so a
killed process leaves either all of a file or none of it.
"""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from connector.errors import RunInProgressError, StoreError
from connector.limits import MAX_REJECTS_STORED, PROFILE_BATCH_ROWS, STORE_PAGE_ROWS
from connector.storage import _json
from connector.storage.base import PROFILE_ID, ProfileStore, StoreTransaction
from connector.storage.batches import BatchTransaction
from connector.storage.columns import (
    PropertyColumns,
    decode_values,
    encode_values,
)
from connector.storage.owners import default_owner, process_alive
from connector.storage.records import (
    Contribution,
    ExportWatermark,
    FileKey,
    Group,
    LedgerEntry,
    OpenUpload,
    Profile,
    RowReject,
    RunCounts,
    RunRecord,
    RunStatus,
    Trigger,
    unique_identifiers,
)
from connector.storage.sqlite import _batches as sqlite_batches

_CHUNK = 500  # bound for `IN (...)` lists, well under SQLite's variable limit
_AMONG_CHUNK = 100_000  # ids a statement of `count_changed_among` takes at once
_BUSY_TIMEOUT_MS = 15_000
_CACHE_KIB = 8 * 1024
"""Page cache per connection. New profile ids are time-ordered, so an import appends to its
B-trees and needs few hot pages: 8 MB was no slower than 32 MB in the benchmark, and
24 MB less peak RSS."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


_dumps = _json.dumps
_loads = _json.loads
_dump_properties = _json.dumps  # {str: [str]}: orjson's own fast path


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("connector.storage.sqlite") / "migrations"
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(scripts)


class SQLiteStore(ProfileStore):
    """A `ProfileStore` in one SQLite file; the schema is migrated on open."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._columns = PropertyColumns()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # created owner-only before SQLite opens it: profiles are personal data
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=_BUSY_TIMEOUT_MS / 1000,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA foreign_keys=ON")
            # a large file is one transaction: a bigger page cache keeps its index pages in memory
            self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            self._db.execute("PRAGMA temp_store=MEMORY")
            self._migrate()
        except (sqlite3.Error, OSError, StoreError) as error:
            if hasattr(self, "_db"):
                self._db.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"cannot open the profile store {self.path}: {error}") from error
        self._unique: frozenset[str] | None = None
        self._in_transaction = False

    # -- schema ----------------------------------------------------------------
    def _migrate(self) -> None:
        scripts = _migrations()
        latest = scripts[-1][0] if scripts else 0
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > latest:
            raise StoreError(
                f"the profile store {self.path} has schema version {version}, newer than "
                f"this connector knows ({latest}); upgrade connector to open it"
            )
        if version == latest and not self._has_json_profiles():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # read again under the write lock: another process may have migrated meanwhile
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            for number, script in scripts:
                if number <= version:
                    continue
                for statement in script.split(";\n"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number}")
            if self._has_json_profiles():
                self._convert_json_profiles()
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _has_json_profiles(self) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'profiles_json'"
        ).fetchone()
        return row is not None

    def _convert_json_profiles(self) -> None:
        """Migration 2, the part SQL cannot do: JSON documents into property columns.

        Runs inside the migration's transaction: a store is converted whole or
        not at all, and opened again converts again.
        """
        columns = PropertyColumns()
        select = "SELECT id, properties, created_at, updated_at, change_seq FROM profiles_json"
        rows = self._db.execute(f"{select} ORDER BY id LIMIT 5000").fetchall()
        while rows:
            documents = [(row, _loads(row[1])) for row in rows]
            names = columns.ensure(self._db, (n for _, doc in documents for n in doc))
            for (pid, _, created, updated, seq), doc in documents:
                cols = [names[name] for name in doc]
                values = [encode_values(values) for values in doc.values()]
                fields = ", ".join(
                    f'"{col}"' for col in ["id", "created_at", "updated_at", "change_seq", *cols]
                )
                self._db.execute(
                    f"INSERT INTO profiles ({fields}) VALUES ({_placeholders(4 + len(cols))})",
                    (pid, created, updated, seq, *values),
                )
            rows = self._db.execute(
                f"{select} WHERE id > ? ORDER BY id LIMIT 5000", (rows[-1][0],)
            ).fetchall()
        self._db.execute("DROP TABLE profiles_json")

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- transactions ------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        if self._in_transaction:
            raise StoreError("a write transaction is already open on this store")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"the profile store {self.path} is busy or locked: {error}") from error
        self._in_transaction = True
        try:
            # read under the write lock: another process may have declared unique properties
            self._unique = None
            yield _SQLiteTransaction(self._db, self.unique_properties(), self._columns)
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            # disk full, I/O errors: nothing was committed; say so without a traceback
            self._rollback()
            raise StoreError(
                f"the profile store {self.path} failed; nothing of this transaction was kept: {error}"
            ) from error
        except BaseException:
            self._rollback()
            raise
        finally:
            self._in_transaction = False

    columnar = True

    @contextmanager
    def batch_transaction(self) -> Iterator[BatchTransaction]:
        with self.transaction():
            yield sqlite_batches.SQLiteBatchTransaction(self._db, self._columns, _now())

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some errors (disk full, I/O); a second
        # ROLLBACK would then fail and hide the error that matters
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write outside a caller's transaction (history, locks, watermarks)."""
        if self._in_transaction:
            raise StoreError(
                "cannot write run history, locks, watermarks or unique properties "
                "while a transaction is open on the same store"
            )
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"the profile store {self.path} is busy or locked: {error}") from error
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def ensure_unique_properties(self, names: Collection[str]) -> None:
        missing = set(names) - self.unique_properties() - {PROFILE_ID}
        if not missing:
            return
        with self._write() as db:
            columns = self._columns.refresh(db)
            for name in sorted(missing):
                db.execute("INSERT OR IGNORE INTO unique_properties (name) VALUES (?)", (name,))
                column = columns.get(name)
                if column is None:
                    continue  # no profile has the property yet
                db.executemany(
                    "INSERT OR IGNORE INTO identifiers (property, value, profile_id) "
                    "VALUES (?, ?, ?)",
                    (
                        (name, value, profile_id)
                        for profile_id, cell in db.execute(
                            f'SELECT id, "{column}" FROM profiles WHERE "{column}" IS NOT NULL'
                        ).fetchall()
                        for value in dict.fromkeys(decode_values(cell))
                    ),
                )
        self._unique = None

    def key_normalization(self, name: str) -> str:
        row = self._db.execute(
            "SELECT normalize FROM unique_properties WHERE name = ?", (name,)
        ).fetchone()
        return "trim" if row is None else str(row[0])

    def identifier_values(self, name: str) -> Iterator[tuple[str, str]]:
        cursor = self._db.execute(
            "SELECT value, profile_id FROM identifiers WHERE property = ?", (name,)
        )
        while rows := cursor.fetchmany(5000):
            yield from rows

    def unique_properties(self) -> frozenset[str]:
        if self._unique is None:
            rows = self._db.execute("SELECT name FROM unique_properties").fetchall()
            self._unique = frozenset(name for (name,) in rows)
        return self._unique

    # -- profiles ------------------------------------------------------------------
    def _select(self) -> tuple[str, list[str]]:
        """The SELECT of whole profiles, and the property names of its value columns."""
        columns = self._columns.refresh(self._db)
        fields = "".join(f', p."{column}"' for column in columns.values())
        return (
            f"SELECT p.id, p.created_at, p.updated_at, p.change_seq{fields} FROM profiles p",
            list(columns),
        )

    def get_profile(self, profile_id: str) -> Profile | None:
        select, names = self._select()
        row = self._db.execute(f"{select} WHERE p.id = ?", (profile_id,)).fetchone()
        return _profile(row, names) if row else None

    def find_profiles(self, property_name: str, value: str) -> list[Profile]:
        if property_name == PROFILE_ID:
            profile = self.get_profile(value)
            return [profile] if profile else []
        select, names = self._select()
        if property_name in self.unique_properties():
            rows = self._db.execute(
                f"{select} JOIN identifiers i ON p.id = i.profile_id "
                "WHERE i.property = ? AND i.value = ?",
                (property_name, value),
            ).fetchall()
        else:
            column = self._columns.by_name.get(property_name)
            if column is None:
                return []
            rows = self._db.execute(
                f'{select} WHERE p."{column}" = ?1 OR instr(char(31) || p."{column}" || char(31), '
                "char(31) || ?1 || char(31)) > 0 ORDER BY p.id",
                (value,),
            ).fetchall()
        return [_profile(row, names) for row in rows]

    def iter_profiles(
        self, *, changed_after: int | None = None, batch_size: int = STORE_PAGE_ROWS
    ) -> Iterator[Profile]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if changed_after is None:
            select, names = self._select()
            rows = self._db.execute(f"{select} ORDER BY p.id LIMIT ?", (batch_size,)).fetchall()
            while True:
                yield from (_profile(row, names) for row in rows)
                if len(rows) < batch_size:
                    return
                select, names = self._select()
                rows = self._db.execute(
                    f"{select} WHERE p.id > ? ORDER BY p.id LIMIT ?", (rows[-1][0], batch_size)
                ).fetchall()
        # strictly after `changed_after`: a profile stamped with that very sequence
        # was already exported by the run that recorded it as its watermark
        select, names = self._select()
        rows = self._db.execute(
            f"{select} WHERE p.change_seq > ? ORDER BY p.change_seq, p.id LIMIT ?",
            (changed_after, batch_size),
        ).fetchall()
        while True:
            yield from (_profile(row, names) for row in rows)
            if len(rows) < batch_size:
                return
            select, names = self._select()
            rows = self._db.execute(
                f"{select} WHERE (p.change_seq, p.id) > (?, ?) ORDER BY p.change_seq, p.id LIMIT ?",
                (rows[-1][3], rows[-1][0], batch_size),
            ).fetchall()

    def profile_batches(
        self,
        properties: Sequence[str],
        *,
        changed_after: int | None = None,
        batch_size: int = PROFILE_BATCH_ROWS,
    ) -> Iterator[pa.Table]:
        """Only the requested columns, a page at a time in key order: no `Profile` objects.

        SQLite hands each page over as one text of JSON lines (`json_object` and
        `group_concat`, both C), which `pyarrow.json` parses natively: 1.6x the
        rows/s of `fetchall` into Python tuples, measured on 5M profiles.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        known = self._columns.refresh(self._db)
        fields = "".join(
            f", 'c{index}', " + (f'p."{known[name]}"' if name in known else "NULL")
            for index, name in enumerate(properties)
        )
        page = (
            f"SELECT json_object('id', p.id, 'seq', p.change_seq{fields}) AS line FROM profiles p"
        )
        if changed_after is None:
            order, key = "p.id", ["id"]
            first, after = "p.id > ?", "p.id > ?"
            bounds: tuple[Any, ...] = ("",)
        else:
            # strictly after `changed_after`: that sequence's profiles were exported already
            order, key = "p.change_seq, p.id", ["seq", "id"]
            first, after = "p.change_seq > ?", "(p.change_seq, p.id) > (?, ?)"
            bounds = (changed_after,)
        schema = pa.schema(
            [("id", pa.string()), ("seq", pa.int64())]
            + [(f"c{index}", pa.string()) for index in range(len(properties))]
        )
        where = first
        while True:
            (text,) = self._db.execute(
                f"SELECT group_concat(line, char(10)) FROM "
                f"({page} WHERE {where} ORDER BY {order} LIMIT ?)",
                (*bounds, batch_size),
            ).fetchone()
            if text is None:
                return
            table = _json_lines(text.encode(), schema).sort_by(
                [(name, "ascending") for name in key]
            )
            arrays = [table.column("id"), table.column("seq")]
            arrays += [
                sqlite_batches.decode_cells(table.column(f"c{index}").combine_chunks())
                for index in range(len(properties))
            ]
            yield pa.Table.from_arrays(arrays, names=["id", "change_seq", *properties])
            if table.num_rows < batch_size:
                return
            last = table.slice(table.num_rows - 1).select(key).to_pylist()[0]
            where, bounds = after, tuple(last[name] for name in key)

    def count_profiles(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM profiles").fetchone()[0])

    def change_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()
        return int(row[0])

    def count_profiles_changed_in(self, change_seqs: Collection[int]) -> int:
        seqs = sorted(set(change_seqs))
        if not seqs:
            return 0
        return int(
            self._db.execute(
                f"SELECT count(*) FROM profiles WHERE change_seq IN ({_placeholders(len(seqs))})",
                seqs,
            ).fetchone()[0]
        )

    def count_changed_among(self, change_seqs: Collection[int], ids: pa.Array) -> int:
        seqs = _dumps(sorted(set(change_seqs)))
        total = 0
        for start in range(0, len(ids), _AMONG_CHUNK):  # as JSON: no SQL variable limit
            chunk = ids.slice(start, _AMONG_CHUNK).to_pylist()
            total += int(
                self._db.execute(
                    "SELECT count(*) FROM profiles WHERE id IN (SELECT value FROM json_each(?)) "
                    "AND change_seq IN (SELECT value FROM json_each(?))",
                    (_dumps(chunk), seqs),
                ).fetchone()[0]
            )
        return total

    # -- groups ----------------------------------------------------------------------
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
        return Group(row[0], row[1], _loads(row[2]), members, _time(row[3]), _time(row[4]))

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
        for chunk in _chunks(list(dict.fromkeys(profile_ids))):
            for profile_id, group_id in self._db.execute(
                f"SELECT profile_id, group_id FROM group_members WHERE type = ? "
                f"AND profile_id IN ({_placeholders(len(chunk))}) ORDER BY group_id",
                (group_type, *chunk),
            ):
                result.setdefault(profile_id, []).append(group_id)
        return result

    # -- ledger ----------------------------------------------------------------------
    def ledger(self, connection: str, goal: str) -> dict[str, LedgerEntry]:
        rows = self._db.execute(
            "SELECT connection, goal, key, etag, config_fingerprint, rows, imported_at, run_id "
            "FROM ledger WHERE connection = ? AND goal = ?",
            (connection, goal),
        ).fetchall()
        return {
            row[2]: LedgerEntry(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                datetime.fromisoformat(row[6]),
                row[7],
            )
            for row in rows
        }

    # -- runs --------------------------------------------------------------------------
    def start_run(
        self, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool = False
    ) -> RunRecord:
        started = _now()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO runs (connection, goal, trigger, status, started_at, dry_run, ran_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    connection,
                    goal,
                    str(trigger),
                    str(RunStatus.RUNNING),
                    started,
                    int(dry_run),
                    default_owner(),
                ),
            )
        run_id = cursor.lastrowid
        assert run_id is not None  # noqa: S101 -- an INSERT into a rowid table always has one
        return RunRecord(
            run_id,
            connection,
            goal,
            trigger,
            RunStatus.RUNNING,
            datetime.fromisoformat(started),
            dry_run=dry_run,
            ran_by=default_owner(),
        )

    def finish_run(
        self, run_id: int, status: RunStatus, counts: RunCounts, error: str | None = None
    ) -> RunRecord:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, ended_at = ?, counts = ?, error = ? WHERE id = ?",
                (str(status), _now(), _dumps(counts.as_dict()), error, run_id),
            )
        record = self.get_run(run_id)
        if record is None:
            raise StoreError(f"run {run_id} vanished from the history")
        return record

    def add_rejects(self, run_id: int, rejects: Iterable[RowReject]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO run_rejects (run_id, file, line, column_name, reason) VALUES (?, ?, ?, ?, ?)",
                ((run_id, r.file, r.line, r.column, r.reason) for r in rejects),
            )

    _RUN_COLUMNS = (
        "id, connection, goal, trigger, status, started_at, ended_at, dry_run, counts, error, "
        "(SELECT count(*) FROM run_rejects WHERE run_id = runs.id), ran_by"
    )

    def list_runs(
        self, connection: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> list[RunRecord]:
        # started_at is ISO text in UTC with microseconds: it sorts and compares as written
        after = since.astimezone(UTC).isoformat(timespec="microseconds") if since else ""
        rows = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE (? IS NULL OR connection = ?) "
            "AND started_at >= ? ORDER BY id DESC LIMIT ?",
            (connection, connection, after, limit),
        ).fetchall()
        return [_run(row) for row in rows]

    def get_run(self, run_id: int) -> RunRecord | None:
        row = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return _run(row) if row else None

    def run_rejects(self, run_id: int, *, limit: int = MAX_REJECTS_STORED) -> list[RowReject]:
        rows = self._db.execute(
            "SELECT file, line, column_name, reason FROM run_rejects WHERE run_id = ? "
            "ORDER BY rowid LIMIT ?",
            (run_id, limit),
        ).fetchall()
        return [RowReject(*row) for row in rows]

    # -- locks -------------------------------------------------------------------------
    def acquire_run_lock(self, connection: str, owner: str) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT owner, acquired_at FROM run_locks WHERE connection = ?", (connection,)
            ).fetchone()
            if row is not None and row[0] != owner:
                if process_alive(row[0]):
                    raise RunInProgressError(
                        f"connection {connection!r} is already running (started {row[1]} by {row[0]}); "
                        "wait for it to finish"
                    )
                db.execute(
                    "UPDATE runs SET status = ?, ended_at = ?, error = ? "
                    "WHERE connection = ? AND status = ?",
                    (
                        str(RunStatus.INTERRUPTED),
                        _now(),
                        f"the process running it ({row[0]}) stopped before it finished",
                        connection,
                        str(RunStatus.RUNNING),
                    ),
                )
            db.execute(
                "INSERT OR REPLACE INTO run_locks (connection, owner, acquired_at) VALUES (?, ?, ?)",
                (connection, owner, _now()),
            )

    def release_run_lock(self, connection: str, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "DELETE FROM run_locks WHERE connection = ? AND owner = ?", (connection, owner)
            )

    # -- export watermarks ----------------------------------------------------------------
    def export_watermark(self, connection: str, goal: str) -> ExportWatermark | None:
        row = self._db.execute(
            "SELECT change_seq, exported_at FROM export_watermarks WHERE connection = ? AND goal = ?",
            (connection, goal),
        ).fetchone()
        if row is None:
            return None
        return ExportWatermark(connection, goal, row[0], datetime.fromisoformat(row[1]))

    def note_upload(self, upload: OpenUpload) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (upload_id, connection, goal, bucket, key, "
                "started_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    upload.connection,
                    upload.goal,
                    upload.bucket,
                    upload.key,
                    upload.started_at.isoformat(),
                ),
            )

    def forget_upload(self, upload_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    def open_uploads(self, connection: str, started_before: datetime) -> list[OpenUpload]:
        rows = self._db.execute(
            "SELECT upload_id, connection, goal, bucket, key, started_at FROM uploads "
            "WHERE connection = ? ORDER BY started_at",
            (connection,),
        ).fetchall()
        uploads = [
            OpenUpload(row[0], row[1], row[2], row[3], row[4], datetime.fromisoformat(row[5]))
            for row in rows
        ]
        return [upload for upload in uploads if upload.started_at < started_before]

    def set_export_watermark(
        self,
        connection: str,
        goal: str,
        change_seq: int,
        exported_at: datetime,
        *,
        members: bool = False,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO export_watermarks (connection, goal, change_seq, exported_at) "
                "VALUES (?, ?, ?, ?)",
                (connection, goal, change_seq, exported_at.isoformat()),
            )
            if members:
                key = (connection, goal)
                db.execute("DELETE FROM export_members WHERE connection = ? AND goal = ?", key)
                db.execute(
                    "INSERT INTO export_members (connection, goal, profile_id) "
                    "SELECT connection, goal, profile_id FROM export_members_next "
                    "WHERE connection = ? AND goal = ?",
                    key,
                )
                db.execute("DELETE FROM export_members_next WHERE connection = ? AND goal = ?", key)

    # -- export members (exits) -----------------------------------------------------------
    def export_members(
        self, connection: str, goal: str, *, after: str = "", limit: int = 10000
    ) -> list[str]:
        rows = self._db.execute(
            "SELECT profile_id FROM export_members WHERE connection = ? AND goal = ? "
            "AND profile_id > ? ORDER BY profile_id LIMIT ?",
            (connection, goal, after, limit),
        ).fetchall()
        return [row[0] for row in rows]

    def stage_export_members(
        self, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool = False
    ) -> None:
        with self._write() as db:
            if fresh:
                db.execute(
                    "DELETE FROM export_members_next WHERE connection = ? AND goal = ?",
                    (connection, goal),
                )
            db.executemany(
                "INSERT OR IGNORE INTO export_members_next (connection, goal, profile_id) "
                "VALUES (?, ?, ?)",
                ((connection, goal, profile_id) for profile_id in profile_ids),
            )

    def close(self) -> None:
        self._db.close()


def _json_lines(data: bytes, schema: pa.Schema) -> pa.Table:
    """JSON lines into a table of `schema`; one block when a line outgrows pyarrow's default."""
    explicit = pa_json.ParseOptions(explicit_schema=schema)
    try:
        return pa_json.read_json(io.BytesIO(data), parse_options=explicit)
    except pa.ArrowInvalid:
        whole = pa_json.ReadOptions(block_size=len(data) + 1)
        return pa_json.read_json(io.BytesIO(data), read_options=whole, parse_options=explicit)


def _profile(row: tuple[Any, ...], names: list[str]) -> Profile:
    """A profile from `_select`'s row: id, times, change_seq, then one cell per property."""
    properties = {
        name: decode_values(cell)
        for name, cell in zip(names, row[4:], strict=True)
        if cell is not None
    }
    return Profile(row[0], properties, _time(row[1]), _time(row[2]), row[3])


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=row[0],
        connection=row[1],
        goal=row[2],
        trigger=Trigger(row[3]),
        status=RunStatus(row[4]),
        started_at=datetime.fromisoformat(row[5]),
        ended_at=_time(row[6]),
        dry_run=bool(row[7]),
        counts=RunCounts.from_dict(_loads(row[8])),
        error=row[9],
        rejects_stored=row[10],
        ran_by=row[11],
    )


class _SQLiteTransaction(sqlite_batches.FileWrites, StoreTransaction):
    def __init__(
        self, db: sqlite3.Connection, unique: frozenset[str], columns: PropertyColumns
    ) -> None:
        self._db = db
        self._unique = unique
        self._columns = columns
        columns.refresh(db)  # under the write lock: columns other processes added count
        self._seq: int | None = None
        self._indexed: dict[str, list[tuple[str, str]]] = {}
        """Unique identifiers of loaded profiles, to rewrite only those that changed."""

    def resolve_profiles(self, property_name: str, values: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        distinct = list(set(values))
        for chunk in _chunks(distinct):
            if property_name == PROFILE_ID:
                rows = self._db.execute(
                    f"SELECT id, id FROM profiles WHERE id IN ({_placeholders(len(chunk))})", chunk
                )
            else:
                rows = self._db.execute(
                    f"SELECT value, profile_id FROM identifiers WHERE property = ? "
                    f"AND value IN ({_placeholders(len(chunk))})",
                    (property_name, *chunk),
                )
            found.update(rows)
        return found

    def load_profiles(self, profile_ids: Collection[str]) -> dict[str, Profile]:
        # remember identifiers for this batch only: a file-long memory would grow with the file
        self._indexed.clear()
        loaded: dict[str, Profile] = {}
        names = list(self._columns.by_name)
        fields = "".join(f', "{column}"' for column in self._columns.by_name.values())
        for chunk in _chunks(list(profile_ids)):
            for row in self._db.execute(
                f"SELECT id, created_at, updated_at, change_seq{fields} FROM profiles "
                f"WHERE id IN ({_placeholders(len(chunk))})",
                chunk,
            ):
                profile = _profile(row, names)
                loaded[profile.id] = profile
                if self._unique:
                    self._indexed[profile.id] = unique_identifiers(profile, self._unique)
        return loaded

    def save_profiles(self, profiles: Iterable[Profile]) -> int:
        seq = self._next_seq()
        now = _now()
        profiles = list(profiles)
        columns = self._columns.ensure(self._db, (n for p in profiles for n in p.properties))
        names = list(columns)
        rows = []
        reindex: dict[str, list[tuple[str, str]]] = {}
        for profile in profiles:
            properties = profile.properties
            rows.append(
                (
                    profile.id,
                    now,
                    now,
                    seq,
                    *(encode_values(properties.get(name)) for name in names),
                )
            )
            profile.change_seq = seq
            if self._unique:
                identifiers = unique_identifiers(profile, self._unique)
                # a profile not loaded in this transaction may still have stored
                # identifiers (it is saved whole, without a load): rewrite them too
                if identifiers != self._indexed.pop(profile.id, None):
                    reindex[profile.id] = identifiers
        quoted = [f'"{column}"' for column in columns.values()]
        assignments = "".join(f", {column} = excluded.{column}" for column in quoted)
        self._db.executemany(
            f"INSERT INTO profiles (id, created_at, updated_at, change_seq{''.join(', ' + c for c in quoted)}) "
            f"VALUES ({_placeholders(4 + len(quoted))}) ON CONFLICT (id) DO UPDATE SET "
            f"updated_at = excluded.updated_at, change_seq = excluded.change_seq{assignments}",
            rows,
        )
        if reindex:
            self._db.executemany(
                "DELETE FROM identifiers WHERE profile_id = ?", ((pid,) for pid in reindex)
            )
            fresh = [(name, value, pid) for pid, pairs in reindex.items() for name, value in pairs]
            try:
                self._db.executemany(
                    "INSERT INTO identifiers (property, value, profile_id) VALUES (?, ?, ?)", fresh
                )
            except sqlite3.IntegrityError as error:
                raise StoreError(self._conflict(fresh)) from error
        return len(rows)

    def _conflict(self, fresh: list[tuple[str, str, str]]) -> str:
        """Which unique value two profiles claim (after a failed identifier insert)."""
        for name, value, profile_id in fresh:
            row = self._db.execute(
                "SELECT profile_id FROM identifiers WHERE property = ? AND value = ?",
                (name, value),
            ).fetchone()
            if row is not None and row[0] != profile_id:
                return (
                    f"unique property {name!r} value {value!r} belongs to profile {row[0]!r}; "
                    f"profile {profile_id!r} cannot have it too"
                )
        return "a unique property value belongs to two profiles"

    def delete_profiles(self, profile_ids: Collection[str]) -> int:
        ids = [(profile_id,) for profile_id in profile_ids]
        self._db.executemany("DELETE FROM identifiers WHERE profile_id = ?", ids)
        self._db.executemany("DELETE FROM group_members WHERE profile_id = ?", ids)
        self._db.executemany("DELETE FROM contributions WHERE profile_id = ?", ids)
        before = self._db.total_changes
        self._db.executemany("DELETE FROM profiles WHERE id = ?", ids)
        for (profile_id,) in ids:
            self._indexed.pop(profile_id, None)
        return self._db.total_changes - before

    def set_key_normalization(self, name: str, mode: str) -> None:
        self._db.execute("UPDATE unique_properties SET normalize = ? WHERE name = ?", (mode, name))

    # -- what each file contributed (on_change: replace) --------------------------------------
    def file_contributions(self, file: FileKey) -> list[Contribution]:
        rows = self._db.execute(
            "SELECT profile_id, property, kind, value, added FROM contributions "
            "WHERE connection = ? AND goal = ? AND key = ? ORDER BY rowid",
            (file.connection, file.goal, file.key),
        )
        return [Contribution(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    def replace_file_contributions(
        self, file: FileKey, contributions: Iterable[Contribution]
    ) -> None:
        where = (file.connection, file.goal, file.key)
        self._db.execute(
            "DELETE FROM contributions WHERE connection = ? AND goal = ? AND key = ?", where
        )
        self._db.executemany(
            "INSERT INTO contributions (connection, goal, key, profile_id, property, kind, "
            "value, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (*where, c.profile_id, c.property, c.kind, c.value, int(c.added))
                for c in contributions
            ),
        )

    def hand_over(
        self, file: FileKey, kind: str, slots: Collection[tuple[str, str, str]]
    ) -> set[tuple[str, str, str]]:
        kept: set[tuple[str, str, str]] = set()
        for profile_id, name, value in slots:
            handed = self._db.execute(
                "UPDATE contributions SET added = 1 WHERE profile_id = ? AND property = ? "
                "AND kind = ? AND (kind = 'sum' OR value = ?) "
                "AND NOT (connection = ? AND goal = ? AND key = ?)",
                (profile_id, name, kind, value, file.connection, file.goal, file.key),
            ).rowcount
            if handed:
                kept.add((profile_id, name, value))
        return kept

    def load_groups(self, group_type: str, group_ids: Collection[str]) -> dict[str, Group]:
        loaded: dict[str, Group] = {}
        for chunk in _chunks(list(group_ids)):
            for row in self._db.execute(
                "SELECT type, id, properties, created_at, updated_at FROM groups "
                f"WHERE type = ? AND id IN ({_placeholders(len(chunk))})",
                (group_type, *chunk),
            ):
                loaded[row[1]] = Group(
                    row[0], row[1], _loads(row[2]), [], _time(row[3]), _time(row[4])
                )
        return loaded

    def save_groups(self, groups: Iterable[Group]) -> int:
        seq = self._next_seq()
        now = _now()
        rows = [(g.type, g.id, _dump_properties(g.properties), now, now, seq) for g in groups]
        self._db.executemany(
            "INSERT INTO groups (type, id, properties, created_at, updated_at, change_seq) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (type, id) DO UPDATE SET "
            "properties = excluded.properties, updated_at = excluded.updated_at, "
            "change_seq = excluded.change_seq",
            rows,
        )
        return len(rows)

    def replace_members(
        self, group_type: str, members: Mapping[str, Collection[str]]
    ) -> tuple[int, int]:
        joined: list[str] = []
        left: list[str] = []
        for group_id, wanted in members.items():
            current = {
                profile_id
                for (profile_id,) in self._db.execute(
                    "SELECT profile_id FROM group_members WHERE type = ? AND group_id = ?",
                    (group_type, group_id),
                )
            }
            leaving = sorted(current - set(wanted))
            joining = [
                profile_id for profile_id in dict.fromkeys(wanted) if profile_id not in current
            ]
            self._db.executemany(
                "DELETE FROM group_members WHERE type = ? AND group_id = ? AND profile_id = ?",
                ((group_type, group_id, profile_id) for profile_id in leaving),
            )
            self._db.executemany(
                "INSERT INTO group_members (type, group_id, profile_id) VALUES (?, ?, ?)",
                ((group_type, group_id, profile_id) for profile_id in joining),
            )
            joined += joining
            left += leaving
        self._stamp([*joined, *left])
        return len(joined), len(left)

    def delete_groups(self, group_type: str, group_ids: Collection[str]) -> tuple[int, int]:
        left: list[str] = []
        deleted = 0
        for group_id in group_ids:
            left += [
                profile_id
                for (profile_id,) in self._db.execute(
                    "DELETE FROM group_members WHERE type = ? AND group_id = ? "
                    "RETURNING profile_id",
                    (group_type, group_id),
                ).fetchall()
            ]
            deleted += self._db.execute(
                "DELETE FROM groups WHERE type = ? AND id = ?", (group_type, group_id)
            ).rowcount
        self._stamp(left)
        return deleted, len(left)

    def _stamp(self, profile_ids: list[str]) -> None:
        """A membership that begins or ends changes what a profile exports (a groups
        column): stamp it, so incremental exports send it again."""
        if profile_ids:
            seq, now = self._next_seq(), _now()
            self._db.executemany(
                "UPDATE profiles SET change_seq = ?, updated_at = ? WHERE id = ?",
                ((seq, now, profile_id) for profile_id in dict.fromkeys(profile_ids)),
            )

    def add_members(self, group_type: str, memberships: Iterable[tuple[str, str]]) -> int:
        joined: list[str] = []
        for group_id, profile_id in memberships:
            added = self._db.execute(
                "INSERT OR IGNORE INTO group_members (type, group_id, profile_id) VALUES (?, ?, ?)",
                (group_type, group_id, profile_id),
            )
            if added.rowcount:
                joined.append(profile_id)
        self._stamp(joined)
        return len(joined)
