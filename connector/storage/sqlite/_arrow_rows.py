"""Rows between Arrow and SQLite without a Python object per cell, where it is safe.

`_arrow_bind` (C, built with the package) moves rows straight between Arrow's
buffers and SQLite, stepping it with the GIL released, on the store's own
`sqlite3` connection: `RowWriter.insert` runs one `INSERT ... SELECT` over a
whole batch read as the table-valued function `arrow_rows(?1)`,
`RowWriter.execute` binds each row's cells into a statement run once per row
(an UPDATE by key), and `query_table` reads a query's result into Arrow's
buffers. It is used only when the process
holds one SQLite library (the one `_sqlite3` links) and the connection's
handle checks out; otherwise, and with `CONNECTOR_SQLITE_ARROW_BIND=0` (for
A/B runs), writes run through `executemany` over Python values and reads as
JSON lines (`_json_lines`), with the same results.
"""

from __future__ import annotations

import _sqlite3
import itertools
import os
import platform
import sqlite3
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import structlog

try:
    from connector.storage.sqlite import _arrow_bind  # type: ignore[attr-defined]
except ImportError:  # not built: no compiler or no SQLite headers at install time
    _arrow_bind = None

ENVIRONMENT_SWITCH = "CONNECTOR_SQLITE_ARROW_BIND"

log = structlog.get_logger("connector.store")


KNOWN_LAYOUTS = {(3, 11), (3, 12), (3, 13)}
"""CPython versions whose `sqlite3.Connection` keeps its `sqlite3 *` first, where the C
module reads it: on any other, a wrong field would be a wild pointer, not a failed check."""


@cache
def _extension() -> ModuleType | None:
    """The C module, when it was built, can find the handle, and shares `_sqlite3`'s library."""
    if _arrow_bind is None or not _known_layout():
        return None
    if not _arrow_bind.same_library(_sqlite3.__file__):
        return None
    module: ModuleType = _arrow_bind
    return module


def native_binding_available() -> bool:
    """Whether this process can bind Arrow natively (the extension, one library)."""
    return _extension() is not None


def binds_natively(db: sqlite3.Connection, path: Path) -> bool:
    """Whether `db`, opened on `path`, takes Arrow batches natively.

    Checks the handle the extension reads out of the connection: SQLite must
    name the same file for it.
    """
    if os.environ.get(ENVIRONMENT_SWITCH, "1") == "0":
        return False
    module = _extension()
    if module is None:
        _say_unavailable(_why_unavailable())
        return False
    reported = module.database_file(db)
    if not reported or os.path.realpath(reported) != os.path.realpath(path):
        _say_unavailable("not sure of the connection's handle (it names another file)")
        return False
    return True


def _known_layout() -> bool:
    return platform.python_implementation() == "CPython" and sys.version_info[:2] in KNOWN_LAYOUTS


def _why_unavailable() -> str:
    if _arrow_bind is None:
        return "not built (install gcc and SQLite's headers, Debian: libsqlite3-dev, then reinstall connector)"
    if not _known_layout():
        return f"not known to find the connection's handle on Python {platform.python_version()}"
    return "on another SQLite library than sqlite3's"


@cache
def _say_unavailable(why: str) -> None:
    """Once a process (for each reason): imports into SQLite still work, more slowly."""
    log.warning("SQLite rows go through executemany and JSON lines: the native binding is " + why)


_BINDABLE = {pa.string(), pa.large_string(), pa.int64(), pa.float64()}
"""The Arrow types `_arrow_bind` reads; any other column takes `executemany`."""

ROWS_WIDTH = 256
"""Columns `arrow_rows` offers (c0 .. c255); a wider insert binds row by row."""


def _contiguous(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


Values = dict[str, str | pa.Array | pa.ChunkedArray]
"""Column name -> an array (a value per row) or a str (an SQL expression, every row)."""


def _arrays(values: Values) -> list[pa.Array | pa.ChunkedArray]:
    return [value for value in values.values() if not isinstance(value, str)]


def _batchable(columns: Sequence[pa.Array | pa.ChunkedArray]) -> bool:
    """Whether one statement over `arrow_rows(?1)` can read these columns."""
    return len(columns) <= ROWS_WIDTH and RowWriter.bindable(columns)


def _expressions(values: Values, marker: Callable[[int], str]) -> list[str]:
    """Each value's SQL: an expression as it is, the i-th array as `marker(i)`."""
    numbers = itertools.count()
    return [value if isinstance(value, str) else marker(next(numbers)) for value in values.values()]


class RowWriter:
    """Runs a statement once per row of some Arrow columns, column i as parameter i + 1."""

    def __init__(self, db: sqlite3.Connection, *, native: bool) -> None:
        self._db = db
        self._native = _extension() if native else None
        if self._native is not None:
            self._native.register_rows(db)  # idempotent: registering again replaces it

    @property
    def native(self) -> bool:
        """Whether rows go through `_arrow_bind` (else `executemany`)."""
        return self._native is not None

    def insert(
        self,
        table: str,
        values: Values,
        *,
        verb: str = "INSERT",
        tail: str = "",
    ) -> None:
        """One row into `table` per row of the arrays in `values` (column name -> array,
        or a str: an SQL expression, the same in every row), in the arrays' order.
        `verb` may be `INSERT OR IGNORE`; `tail` an upsert's `ON CONFLICT ...` clause.

        Natively one `INSERT ... SELECT` over `arrow_rows(?1)`: a statement run per row
        opens the table's and its indexes' cursors each time, which made inserting take
        more than twice as long (perf, 1M profiles). Rows go in one after the other
        either way, so a conflict with an earlier row of the batch resolves the same."""
        names = ", ".join(f'"{name}"' for name in values)
        arrays, native = _arrays(values), self._native
        if native is None or not _batchable(arrays):
            cells = ", ".join(_expressions(values, lambda _: "?"))
            self.execute(f"{verb} INTO {table} ({names}) VALUES ({cells}) {tail}", arrays)
            return
        batch = self.batch(arrays)
        if batch.num_rows == 0:
            return
        cells = ", ".join(_expressions(values, lambda i: f"c{i}"))
        # `WHERE true`: without it SQLite would read an upsert's ON as a join's
        where = " WHERE true " if tail else ""
        native.execute_rows(
            self._db,
            f"{verb} INTO {table} ({names}) SELECT {cells} FROM arrow_rows(?1){where}{tail}",
            batch,
        )

    def update(
        self,
        table: str,
        values: Values,
        *,
        key: str,
        keys: pa.Array | pa.ChunkedArray,
    ) -> None:
        """`UPDATE table SET column = value, ... WHERE key = ?` for each of `keys`, in order;
        `values` as `insert`'s (an array per row, or a str: an SQL expression).

        Natively one `UPDATE ... FROM arrow_rows(?1)` over the batch: a statement run per
        row resets and binds it each time (200,000 profiles by rowid: 0.54 -> 0.39 s).
        SQLite's UPDATE FROM updates a row matched twice only once, with either
        match, where statements run per row apply both in turn: keys repeated in the
        batch take that path."""
        arrays, native = _arrays(values), self._native
        columns = [*arrays, keys]

        def assignments(marker: Callable[[int], str]) -> str:
            cells = _expressions(values, marker)
            return ", ".join(f'"{name}" = {cell}' for name, cell in zip(values, cells, strict=True))

        if native is None or not _batchable(columns) or pc.count_distinct(keys).as_py() < len(keys):
            self.execute(
                f'UPDATE {table} SET {assignments(lambda _: "?")} WHERE "{key}" = ?', columns
            )
            return
        batch = self.batch(columns)
        if batch.num_rows == 0:
            return
        native.execute_rows(
            self._db,
            f"UPDATE {table} SET {assignments(lambda i: f'r.c{i}')} FROM arrow_rows(?1) r "
            f'WHERE {table}."{key}" = r.c{len(arrays)}',
            batch,
        )

    def execute(self, sql: str, columns: Sequence[pa.Array | pa.ChunkedArray]) -> None:
        """`sql` once per row of `columns`, column i bound to parameter i + 1."""
        if self._native is not None and self.bindable(columns):
            batch = self.batch(columns)
            if batch.num_rows:
                self._native.execute_batch(self._db, sql, batch)
            return
        arrays = [_contiguous(column) for column in columns]
        if arrays and len(arrays[0]):
            self._db.executemany(sql, zip(*(array.to_pylist() for array in arrays), strict=True))

    @staticmethod
    def bindable(columns: Sequence[pa.Array | pa.ChunkedArray]) -> bool:
        """Whether `_arrow_bind` reads every column's type."""
        return all(column.type in _BINDABLE for column in columns)

    @staticmethod
    def batch(columns: Sequence[pa.Array | pa.ChunkedArray]) -> pa.RecordBatch:
        """The columns as one record batch, as `arrow_rows` reads it (`c0`, `c1`, ...)."""
        arrays = [_contiguous(column) for column in columns]
        return pa.RecordBatch.from_arrays(arrays, names=[f"p{i}" for i in range(len(arrays))])


_KINDS = {pa.string(): "t", pa.int64(): "i"}


def query_table(
    db: sqlite3.Connection,
    sql: str,
    parameters: tuple[str | int | pa.RecordBatch | None, ...],
    schema: pa.Schema,
) -> pa.Table:
    """The rows of `sql`, one column per field of `schema` (string or int64), read natively.

    A parameter may be one record batch, read in `sql` as `arrow_rows(?N)` (on a
    connection a `RowWriter` registered it for). Only for a connection
    `binds_natively` accepted.
    """
    module = _extension()
    if module is None:
        raise RuntimeError("query_table needs the _arrow_bind extension")
    kinds = "".join(_KINDS[field.type] for field in schema)
    rows, columns = module.query_columns(db, sql, parameters, kinds)
    arrays = []
    for field, (nulls, validity, offsets, data) in zip(schema, columns, strict=True):
        buffers = [pa.py_buffer(validity) if nulls else None]
        if offsets is not None:
            buffers.append(pa.py_buffer(offsets))
        buffers.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(field.type, rows, buffers, null_count=nulls))
    return pa.Table.from_arrays(arrays, schema=schema)
