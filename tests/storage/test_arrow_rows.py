"""Arrow rows bound natively into SQLite (`_arrow_bind`) as `executemany` would bind them.

The extension reads each cell from Arrow's buffers and steps the statement
with the GIL released, on the store's own connection and SQLite library.
These tests hold it to `executemany` over the same values (any text, nulls,
empty strings, slices, chunks, numbers), check its errors, and check the
guards that decide when a store may use it.
"""

from __future__ import annotations

import _sqlite3
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from connector.storage import PROFILE_ID, SQLiteStore
from connector.storage.sqlite import _arrow_bind, _arrow_rows  # type: ignore[attr-defined]
from connector.storage.sqlite._arrow_rows import (
    ENVIRONMENT_SWITCH,
    RowWriter,
    binds_natively,
    native_binding_available,
    query_table,
)

CELLS = st.none() | st.text(max_size=12)  # any Unicode text incl. NUL and controls


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    connection.execute("CREATE TABLE t (a, b, c)")
    yield connection
    connection.close()


def _stored(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT a, b, c, typeof(a), typeof(b), typeof(c) FROM t ORDER BY rowid"
    ).fetchall()


def _text_columns(
    rows: list[tuple[str | None, str | None]], *, large: bool, cut: int
) -> tuple[pa.Array, pa.ChunkedArray]:
    """The rows' two cells as Arrow text; the second in two chunks cut at `cut` (a slice
    and a chunked column: Arrow's offset and several buffers)."""
    text = pa.large_string() if large else pa.string()
    first = pa.array([a for a, _ in rows], text)
    second = pa.chunked_array(
        [pa.array([b for _, b in rows[:cut]], text), pa.array([b for _, b in rows[cut:]], text)]
    )
    return first, second


def test_the_extension_is_built_and_shares_sqlite3s_library() -> None:
    """Fails, never skips: without it every SQLite import takes the slower route.

    Building it needs a C compiler and SQLite's headers (Debian: libsqlite3-dev).
    """
    assert native_binding_available(), "connector.storage.sqlite._arrow_bind was not built"
    assert _arrow_bind.same_library(_sqlite3.__file__)


def test_a_library_that_is_not_loaded_is_not_the_same_one(tmp_path: Path) -> None:
    assert not _arrow_bind.same_library(str(tmp_path / "absent.so"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(CELLS, CELLS), max_size=30), large=st.booleans(), cut=st.integers(0, 3)
)
def test_any_text_is_stored_exactly_as_executemany_stores_it(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str | None, str | None]],
    large: bool,
    cut: int,
) -> None:
    """Both native routes against `executemany`: `RowWriter.execute` (a statement bound and
    stepped per row) and `RowWriter.insert` (one INSERT ... SELECT over `arrow_rows(?1)`,
    or VALUES row by row without the extension): the same rows, cells, types and order."""
    folder = tmp_path_factory.mktemp("bind")
    first, second = _text_columns(rows, large=large, cut=cut)
    numbers = pa.array(range(len(rows)), pa.int64())
    halves = pa.array([float(i) / 2 for i in range(len(rows))], pa.float64())
    stored = []
    for native in (True, False):
        db = sqlite3.connect(folder / f"{native}.db", isolation_level=None)
        db.execute("CREATE TABLE t (a, b, c)")
        writer = RowWriter(db, native=native)
        writer.execute("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", [first, second, numbers])
        writer.insert("t", {"c": halves, "a": first, "b": second})
        writer.insert("t", {"b": second, "c": "'same' || 1"})
        stored.append(_stored(db))
        db.close()
    assert stored[0] == stored[1]
    assert [row[:2] for row in stored[0]] == [*rows, *rows, *((None, b) for _, b in rows)]
    assert {row[2] for row in stored[0][2 * len(rows) :]} <= {"same1"}


def test_a_slice_binds_its_own_rows(db: sqlite3.Connection) -> None:
    values = pa.array(["a", None, "b", "c", None, "d"]).slice(2, 3)
    floats = pa.array([0.5, 1.5, None, 2.5]).slice(1, 3)
    numbers = pa.array([7, 8, 9, 10], pa.int64()).slice(1, 3)
    RowWriter(db, native=True).execute(
        "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", [values, floats, numbers]
    )
    assert db.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == [
        ("b", 1.5, 8),
        ("c", None, 9),
        (None, 2.5, 10),
    ]


def test_an_update_binds_its_key_last_and_counts_the_rows_it_changed(
    db: sqlite3.Connection,
) -> None:
    db.executemany(
        "INSERT INTO t (a, b) VALUES (?, ?)", [("k1", "old"), ("k2", "old"), ("k3", "old")]
    )
    batch = pa.record_batch(
        [pa.array(["new1", None, "new9"]), pa.array(["k1", "k2", "k9"])], names=["b", "a"]
    )
    changed = _arrow_bind.execute_batch(db, "UPDATE t SET b = ? WHERE a = ?", batch)
    assert changed == 2
    assert db.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [
        ("k1", "new1"),
        ("k2", None),
        ("k3", "old"),
    ]


def test_a_constraint_failure_is_an_integrity_error_naming_the_row(db: sqlite3.Connection) -> None:
    db.execute("CREATE UNIQUE INDEX t_a ON t (a)")
    db.execute("BEGIN")
    with pytest.raises(
        sqlite3.IntegrityError, match=r"UNIQUE constraint failed: t\.a \(row 2 of the batch\)"
    ):
        RowWriter(db, native=True).execute(
            "INSERT INTO t (a) VALUES (?)", [pa.array(["x", "y", "x", "z"])]
        )
    # as with executemany, the rows before it are in the open transaction; the caller rolls back
    assert db.in_transaction
    assert db.execute("SELECT a FROM t").fetchall() == [("x",), ("y",)]
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_bad_calls_are_refused_before_anything_is_written(db: sqlite3.Connection) -> None:
    one = pa.record_batch([pa.array(["x"])], names=["a"])
    with pytest.raises(ValueError, match="takes 2 parameters, the batch has 1 columns"):
        _arrow_bind.execute_batch(db, "INSERT INTO t (a, b) VALUES (?, ?)", one)
    with pytest.raises(sqlite3.OperationalError, match=r"^no such table: absent$"):
        _arrow_bind.execute_batch(db, "INSERT INTO absent VALUES (?)", one)
    nested = pa.record_batch([pa.array([["x"]])], names=["a"])
    with pytest.raises(TypeError, match="nested or dictionary"):
        _arrow_bind.execute_batch(db, "INSERT INTO t (a) VALUES (?)", nested)
    dates = pa.record_batch([pa.array([1], pa.date32())], names=["a"])
    with pytest.raises(TypeError, match="Arrow type tdD is not bound"):
        _arrow_bind.execute_batch(db, "INSERT INTO t (a) VALUES (?)", dates)
    with pytest.raises(TypeError, match=r"expected a sqlite3\.Connection"):
        _arrow_bind.execute_batch(object(), "INSERT INTO t (a) VALUES (?)", one)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_closed_connection_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "closed.db")
    db.close()
    with pytest.raises(ValueError, match="the connection is closed"):
        _arrow_bind.execute_batch(db, "SELECT ?", pa.record_batch([pa.array(["x"])], names=["a"]))


def test_the_gil_is_released_while_the_rows_are_written(db: sqlite3.Connection) -> None:
    """Another thread runs Python during the call: the point of binding natively."""
    started, stop = threading.Event(), threading.Event()
    spins = [0]

    def spin() -> None:
        started.set()
        while not stop.is_set():
            spins[0] += 1

    values = pa.array([f"value {i}" for i in range(300_000)])
    batch = pa.record_batch([values, values, values], names=["a", "b", "c"])
    thread = threading.Thread(target=spin)
    thread.start()
    started.wait()
    db.execute("BEGIN")
    before = spins[0]
    _arrow_bind.execute_batch(db, "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", batch)
    during = spins[0] - before
    stop.set()
    thread.join()
    db.execute("COMMIT")
    # with the GIL held for the whole call the other thread could not count at all
    assert during > 1000


def test_a_thread_using_the_connection_during_a_page_waits_for_it_and_goes_on(
    tmp_path: Path,
) -> None:
    """The extension holds the connection's mutex for a whole page or batch (GIL released):
    another thread's calls on that connection, GIL held, wait and then run; no deadlock."""
    db = sqlite3.connect(tmp_path / "shared.db", isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE t (a, b, c)")
    values = pa.array([f"value {i}" for i in range(200_000)])
    batch = pa.record_batch([values, values, values], names=["a", "b", "c"])
    schema = pa.schema([("a", pa.string()), ("b", pa.string()), ("c", pa.string())])
    done = threading.Event()
    pages: list[int] = []

    def native() -> None:
        db.execute("BEGIN")
        _arrow_bind.execute_batch(db, "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", batch)
        db.execute("COMMIT")
        for _ in range(3):
            pages.append(query_table(db, "SELECT a, b, c FROM t", (), schema).num_rows)
        done.set()

    thread = threading.Thread(target=native)
    thread.start()
    counts = []
    while not done.is_set():
        counts.append(db.execute("SELECT count(*) FROM t").fetchone()[0])
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert pages == [200_000] * 3
    # one connection, one transaction: the other thread's count can only fall between calls
    assert counts
    assert set(counts) <= {0, 200_000}
    db.close()


def test_the_handle_is_trusted_only_for_the_file_the_store_opened(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "one.db")
    try:
        assert _arrow_bind.database_file(db) == str(tmp_path / "one.db")
        assert binds_natively(db, tmp_path / "one.db")
        assert not binds_natively(db, tmp_path / "other.db")
    finally:
        db.close()
    memory = sqlite3.connect(":memory:")
    try:
        assert not binds_natively(memory, Path(":memory:"))
    finally:
        memory.close()


def test_a_store_binds_natively_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SQLiteStore(tmp_path / "native.db") as store:
        assert store.binds_arrow_natively
    monkeypatch.setenv(ENVIRONMENT_SWITCH, "0")
    with SQLiteStore(tmp_path / "python.db") as store:
        assert not store.binds_arrow_natively


def test_without_the_extension_a_store_says_so_once_and_imports_through_executemany(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_arrow_rows, "_arrow_bind", None)
    _arrow_rows._extension.cache_clear()
    _arrow_rows._say_unavailable.cache_clear()
    try:
        with capture_logs() as logs:
            for name in ("one.db", "two.db"):
                with SQLiteStore(tmp_path / name) as store:
                    assert not store.binds_arrow_natively
                    with store.batch_transaction() as tx:
                        tx.prepare(["p"])
                        tx.insert_profiles(
                            pa.table({"id": ["i1"], "p": pa.array([["v"]], pa.list_(pa.string()))}),
                            identifier=None,
                        )
                    profile = store.get_profile("i1")
                    assert profile is not None
                    assert profile.properties == {"p": ["v"]}
    finally:
        _arrow_rows._extension.cache_clear()
        _arrow_rows._say_unavailable.cache_clear()
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "native binding is not built" in warnings[0]["event"]
    assert "libsqlite3-dev" in warnings[0]["event"]


def test_a_column_the_extension_cannot_bind_goes_through_executemany(
    db: sqlite3.Connection,
) -> None:
    words = pa.array(["x", "y", "x"]).dictionary_encode()
    RowWriter(db, native=True).execute(
        "INSERT INTO t (a, b) VALUES (?, ?)", [words, pa.array([1, 2, 3], pa.int32())]
    )
    assert db.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == [
        ("x", 1),
        ("y", 2),
        ("x", 3),
    ]


def test_a_handle_that_names_another_file_is_not_used_and_said_so(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "one.db")
    _arrow_rows._say_unavailable.cache_clear()
    try:
        with capture_logs() as logs:
            assert not binds_natively(db, tmp_path / "other.db")
    finally:
        db.close()
        _arrow_rows._say_unavailable.cache_clear()
    assert ["names another file" in entry["event"] for entry in logs] == [True]


# ------------------------------------------------------------------ a whole batch as arrow_rows(?1)
def test_an_insert_over_the_batch_reads_slices_numbers_and_nulls(db: sqlite3.Connection) -> None:
    values = pa.array(["a", None, "b", "", None, "d"]).slice(2, 3)
    numbers = pa.array([7, 8, None, 10], pa.int64()).slice(1, 3)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    RowWriter(db, native=True).insert("t", {"a": values, "b": numbers, "c": "42"})
    db.set_trace_callback(None)
    # one statement for the whole batch (the trace shows the bound pointer as NULL)
    assert statements == ['INSERT INTO t ("a", "b", "c") SELECT c0, c1, 42 FROM arrow_rows(NULL)']
    assert _stored(db) == [
        ("b", 8, 42, "text", "integer", "integer"),
        ("", None, 42, "text", "null", "integer"),
        (None, 10, 42, "null", "integer", "integer"),
    ]


def test_an_insert_over_the_batch_is_one_statement_all_or_nothing(db: sqlite3.Connection) -> None:
    _arrow_bind.register_rows(db)
    db.execute("CREATE UNIQUE INDEX t_a ON t (a)")
    db.execute("INSERT INTO t (a) VALUES ('before')")
    batch = pa.record_batch([pa.array(["x", "y", "x", "z"])], names=["a"])
    db.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError, match=r"^UNIQUE constraint failed: t\.a$"):
        _arrow_bind.execute_rows(db, "INSERT INTO t (a) SELECT c0 FROM arrow_rows(?1)", batch)
    # the statement undoes its own rows; the transaction and what it held stay
    assert db.in_transaction
    assert db.execute("SELECT a FROM t").fetchall() == [("before",)]
    db.execute("ROLLBACK")


def test_arrow_rows_counts_the_rows_it_changed_and_reads_nothing_without_its_batch(
    db: sqlite3.Connection,
) -> None:
    _arrow_bind.register_rows(db)
    _arrow_bind.register_rows(db)  # again: replaces it, as each RowWriter does
    batch = pa.record_batch([pa.array(["x", "y"]), pa.array([1, 2], pa.int64())], names="ab")
    insert = "INSERT INTO t (a, b) SELECT c0, c1 FROM arrow_rows(?1) WHERE c1 > 1"
    assert _arrow_bind.execute_rows(db, insert, batch) == 1
    # columns past the batch's width read NULL
    assert (
        _arrow_bind.execute_rows(db, "INSERT INTO t (c) SELECT c9 FROM arrow_rows(?1)", batch) == 2
    )
    assert db.execute("SELECT count(*) FROM t WHERE c IS NULL").fetchone() == (3,)
    # SQL cannot hand it a pointer: any other argument is no batch, so no rows
    assert db.execute("SELECT count(*) FROM arrow_rows(1)").fetchone() == (0,)
    with pytest.raises(sqlite3.OperationalError, match=r"arrow_rows needs its batch"):
        db.execute("SELECT c0 FROM arrow_rows").fetchall()


def test_bad_calls_over_a_batch_are_refused_before_anything_is_written(
    db: sqlite3.Connection,
) -> None:
    _arrow_bind.register_rows(db)
    one = pa.record_batch([pa.array(["x"])], names=["a"])
    with pytest.raises(ValueError, match="takes 2 parameters, not just the batch"):
        _arrow_bind.execute_rows(db, "INSERT INTO t (a, b) SELECT c0, ?2 FROM arrow_rows(?1)", one)
    with pytest.raises(sqlite3.OperationalError, match=r"^no such table: absent$"):
        _arrow_bind.execute_rows(db, "INSERT INTO absent SELECT c0 FROM arrow_rows(?1)", one)
    wide = pa.record_batch([pa.array(["x"])] * 257, names=[f"c{i}" for i in range(257)])
    with pytest.raises(ValueError, match="at most 256 columns, the batch has 257"):
        _arrow_bind.execute_rows(db, "INSERT INTO t (a) SELECT c0 FROM arrow_rows(?1)", wide)
    dates = pa.record_batch([pa.array([1], pa.date32())], names=["a"])
    with pytest.raises(TypeError, match="Arrow type tdD is not bound"):
        _arrow_bind.execute_rows(db, "INSERT INTO t (a) SELECT c0 FROM arrow_rows(?1)", dates)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


@pytest.mark.parametrize("native", [True, False])
def test_an_insert_that_ignores_or_upserts_takes_the_batch_s_rows_in_order(
    db: sqlite3.Connection, native: bool
) -> None:
    """`save_groups` (upsert with json_patch) and the staged memberships (OR IGNORE) rely on
    a repeated key meeting the rows before it, one after the other, as executemany did."""
    db.execute("CREATE TABLE g (k TEXT PRIMARY KEY, v TEXT NOT NULL, n)")
    writer = RowWriter(db, native=native)
    keys = pa.array(["a", "b", "a", "a"])
    writer.insert("g", {"k": keys, "v": pa.array(["1", "2", "3", "4"])}, verb="INSERT OR IGNORE")
    assert db.execute("SELECT k, v FROM g ORDER BY k").fetchall() == [("a", "1"), ("b", "2")]
    patches = pa.array(['{"x": 1}', '{"y": 2}', '{"x": 3, "z": 4}'])
    writer.insert(
        "g",
        {"k": pa.array(["a", "c", "a"]), "v": patches, "n": "7"},
        tail="ON CONFLICT (k) DO UPDATE SET v = json_patch(g.v, excluded.v), n = coalesce(g.n, '') || 'x'",
    )
    assert db.execute("SELECT k, v, n FROM g ORDER BY k").fetchall() == [
        ("a", '{"x":3,"z":4}', "xx"),  # '1' is no object: json_patch replaces it, then merges
        ("b", "2", None),
        ("c", '{"y": 2}', 7),
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(st.integers(0, 9), CELLS), max_size=12),
    by_rowid=st.booleans(),
)
def test_an_update_over_the_batch_leaves_what_statements_run_per_row_leave(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, str | None]], by_rowid: bool
) -> None:
    """Natively one UPDATE ... FROM over the batch; a key twice in it (which SQLite's
    UPDATE FROM would apply once, with either row) takes the per-row statements."""
    folder = tmp_path_factory.mktemp("update")
    keys = pa.array([key + 1 for key, _ in rows], pa.int64())  # k0 is rowid 1
    if not by_rowid:
        keys = pa.array([f"k{key}" for key, _ in rows], pa.string())
    values = pa.array([value for _, value in rows], pa.string())
    stored = {}
    for native in (True, False):
        db = sqlite3.connect(folder / f"{native}.db", isolation_level=None)
        db.execute("CREATE TABLE u (k TEXT PRIMARY KEY, v, n)")
        db.executemany("INSERT INTO u (k, v) VALUES (?, 'old')", [(f"k{n}",) for n in range(10)])
        db.execute("BEGIN")
        RowWriter(db, native=native).update(
            "u", {"v": values, "n": "7"}, key="rowid" if by_rowid else "k", keys=keys
        )
        db.execute("COMMIT")
        stored[native] = db.execute("SELECT rowid, k, v, typeof(v), n FROM u ORDER BY k").fetchall()
        db.close()
    assert stored[True] == stored[False]
    for key in {key for key, _ in rows}:  # the last row of a key wins, as row after row
        last = [value for k, value in rows if k == key][-1]
        assert stored[True][key][2:] == (last, "null" if last is None else "text", 7)
    untouched = [row for row in stored[True] if row[0] - 1 not in dict(rows)]
    assert all(row[2:] == ("old", "text", None) for row in untouched)


def test_an_update_over_the_batch_is_one_statement_and_a_repeated_key_is_not(
    db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.execute("INSERT INTO t (a, b) VALUES ('x', '1'), ('y', '2')")
    writer = RowWriter(db, native=True)
    per_row: list[str] = []
    real_execute = writer.execute

    def execute(sql: str, columns: object) -> None:
        per_row.append(sql)
        real_execute(sql, columns)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "execute", execute)
    writer.update("t", {"b": pa.array(["3", "4"])}, key="a", keys=pa.array(["y", "x"]))
    assert per_row == []
    assert db.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [("x", "4"), ("y", "3")]
    writer.update("t", {"b": pa.array(["5", "6"])}, key="a", keys=pa.array(["x", "x"]))
    assert per_row == ['UPDATE t SET "b" = ? WHERE "a" = ?']
    assert db.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [("x", "6"), ("y", "3")]


def test_an_insert_wider_than_arrow_rows_or_not_bindable_goes_row_by_row(
    tmp_path: Path,
) -> None:
    db = sqlite3.connect(tmp_path / "wide.db", isolation_level=None)
    names = [f"p{i}" for i in range(300)]
    db.execute(f"CREATE TABLE w ({', '.join(names)})")
    RowWriter(db, native=True).insert("w", {name: pa.array([name, None]) for name in names})
    assert db.execute("SELECT p0, p299 FROM w ORDER BY rowid").fetchall() == [
        ("p0", "p299"),
        (None, None),
    ]
    words = pa.array(["x", "y"]).dictionary_encode()
    RowWriter(db, native=True).insert("w", {"p0": words, "p1": "'fixed'"})
    assert db.execute("SELECT p0, p1 FROM w WHERE p1 = 'fixed'").fetchall() == [
        ("x", "fixed"),
        ("y", "fixed"),
    ]
    db.close()


# ------------------------------------------------------------------ reading into Arrow

LIST = pa.list_(pa.string())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.tuples(st.none() | st.lists(st.text(max_size=6), min_size=1, max_size=3), CELLS),
        min_size=1,
        max_size=25,
    ),
    page=st.integers(1, 7),
)
def test_pages_and_lookups_read_natively_as_json_lines_read_them(
    tmp_path_factory: pytest.TempPathFactory,
    values: list[tuple[list[str] | None, str | None]],
    page: int,
) -> None:
    """Any stored text (controls and NUL included, where JSON needs escapes), empty lists,
    nulls, a column no profile has yet; pages of every size; by key and by change."""
    values = [  # U+001F separates a cell's values: the store refuses it in a value
        (
            None if tags is None else [tag.replace("\x1f", "") for tag in tags],
            None if note is None else note.replace("\x1f", ""),
        )
        for tags, note in values
    ]
    folder = tmp_path_factory.mktemp("read")
    with SQLiteStore(folder / "store.db") as store:
        store.ensure_unique_properties(["email"])
        ids = [f"id-{n:03d}" for n in range(len(values))]
        with store.batch_transaction() as tx:
            tx.prepare(["email", "tags", "note"])
            tx.insert_profiles(
                pa.table(
                    {
                        "key": [f"k{n}" for n in range(len(values))],
                        "id": ids,
                        "email": pa.array([[f"k{n}"] for n in range(len(values))], LIST),
                        "tags": pa.array([tags for tags, _ in values], LIST),
                        "note": pa.array(
                            [None if note is None else [note] for _, note in values], LIST
                        ),
                    }
                ),
                identifier="email",
            )
        read = {}
        for native in (True, False):
            store.binds_arrow_natively = native
            names = ["tags", "note", "never_written"]
            by_key = pa.concat_tables(store.profile_batches(names, batch_size=page))
            by_change = pa.concat_tables(
                store.profile_batches(names, changed_after=0, batch_size=page)
            )
            with store.batch_transaction() as tx:
                keys = pa.array(["absent", *[f"k{n}" for n in range(len(values))][::-1]])
                found = tx.lookup("email", keys, ["tags", "note"])
                by_id = tx.lookup(PROFILE_ID, pa.array(ids[:3]), ["note"])
            read[native] = (by_key, by_change, found, by_id)
        for native_table, json_table in zip(read[True], read[False], strict=True):
            assert native_table.schema == json_table.schema
            assert native_table.to_pylist() == json_table.to_pylist()
        assert read[True][0].column("id").to_pylist() == ids
        assert read[True][0].column("tags").to_pylist() == [tags or None for tags, _ in values]
        assert sorted(read[True][2].column("key").to_pylist()) == sorted(
            f"k{n}" for n in range(len(values))
        )


def test_a_query_s_columns_must_be_named_by_kind(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO t (a, b) VALUES ('x', 1)")
    with pytest.raises(ValueError, match="returns 2 columns"):
        _arrow_bind.query_columns(db, "SELECT a, b FROM t", (), "t")
    with pytest.raises(ValueError, match="returns 1 columns"):
        _arrow_bind.query_columns(db, "SELECT a FROM t", (), "x")
    with pytest.raises(TypeError, match="parameter 1: float is not bound"):
        _arrow_bind.query_columns(db, "SELECT a FROM t WHERE b = ?", (1.5,), "t")
    with pytest.raises(ValueError, match="takes 1 parameters, 0 were given"):
        _arrow_bind.query_columns(db, "SELECT a FROM t WHERE b = ?", (), "t")
    with pytest.raises(sqlite3.OperationalError, match=r"^no such column: z$"):
        _arrow_bind.query_columns(db, "SELECT z FROM t", (), "t")


def test_a_query_reads_text_numbers_and_nulls_into_arrow(db: sqlite3.Connection) -> None:
    rows = [("x", 1), (None, -2), ("", None), ("é\x00z", 2**62)] + [(f"v{n}", n) for n in range(20)]
    db.executemany("INSERT INTO t (a, b) VALUES (?, ?)", rows)
    schema = pa.schema([("a", pa.string()), ("b", pa.int64())])
    table = query_table(
        db, "SELECT a, b FROM t WHERE b IS NULL OR b > ? ORDER BY rowid", (-5,), schema
    )
    table.validate(full=True)
    assert [tuple(row.values()) for row in table.to_pylist()] == rows
    empty = query_table(db, "SELECT a, b FROM t WHERE b > ?", (2**63 - 1,), schema)
    assert empty.num_rows == 0
    assert empty.schema == schema


def test_a_query_reads_one_record_batch_parameter_as_arrow_rows(db: sqlite3.Connection) -> None:
    """The engine's key lookups pass the keys this way: no JSON text built and parsed, and
    any text (NUL, quotes, backslashes, controls) is a key like any other."""
    _arrow_bind.register_rows(db)
    db.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [("a\x00b", 1), ('q"\\\x01', 2), ("x", 3)])
    keys = pa.record_batch([pa.array(["x", "a\x00b", None, 'q"\\\x01', "missing"])], names="k")
    schema = pa.schema([("k", pa.string()), ("b", pa.int64())])
    found = query_table(
        db, "SELECT k.c0, t.b FROM arrow_rows(?1) k CROSS JOIN t ON t.a = k.c0", (keys,), schema
    )
    assert found.to_pylist() == [
        {"k": "x", "b": 3},
        {"k": "a\x00b", "b": 1},
        {"k": 'q"\\\x01', "b": 2},
    ]
    mixed = query_table(
        db,
        "SELECT k.c0, count(*) FROM arrow_rows(?2) k WHERE k.c0 > ?1 GROUP BY 1 ORDER BY 1",
        ("m", keys),
        schema,
    )
    assert mixed.column("k").to_pylist() == ["missing", 'q"\\\x01', "x"]
    with pytest.raises(ValueError, match="at most one record batch"):
        _arrow_bind.query_columns(
            db, "SELECT 1 FROM arrow_rows(?1), arrow_rows(?2)", (keys, keys), "i"
        )
    wide = pa.record_batch([pa.array(["x"])] * 257, names=[f"c{i}" for i in range(257)])
    with pytest.raises(ValueError, match="at most 256 columns"):
        _arrow_bind.query_columns(db, "SELECT c0 FROM arrow_rows(?1)", (wide,), "t")


@pytest.mark.parametrize("native", [True, False])
def test_a_lookup_gives_each_profile_s_rowid_and_an_update_finds_it_by_that_or_by_id(
    tmp_path: Path, native: bool
) -> None:
    """The rowid saves the update one search of the id's index; a profile without one
    (written by the piece before, read back by the engine) is found by its id."""
    store = SQLiteStore(tmp_path / "store.db")
    store.binds_arrow_natively = native
    store.ensure_unique_properties(["email"])
    ids = ["p1", "p2", "p3"]
    new = pa.table(
        {
            "key": pa.array(["a@x", "b@x", "c@x"]),
            "id": pa.array(ids),
            "email": pa.array([["a@x"], ["b@x"], ["c@x"]], LIST),
            "note": pa.array([["old"]] * 3, LIST),
        }
    )
    with store.batch_transaction() as tx:
        tx.prepare(["email", "note"])
        tx.insert_profiles(new, identifier="email")
    with store.batch_transaction() as tx:
        found = tx.lookup("email", pa.array(["c@x", "a@x", "b@x"]), ["note"])
        rowids = dict(store._db.execute("SELECT id, rowid FROM profiles").fetchall())
        assert found.column_names == ["key", "id", "note", "rowid"]
        assert [rowids[i] for i in found["id"].to_pylist()] == found["rowid"].to_pylist()
        places = pa.array([found["rowid"][0].as_py(), None, found["rowid"][2].as_py()])
        changed = pa.table({"id": found["id"], "note": pa.array([["new"]] * 3, LIST)})
        tx.encoded_update(changed, places)()
    assert [store.get_profile(i).properties["note"] for i in ids] == [["new"]] * 3  # type: ignore[union-attr]
    store.close()
