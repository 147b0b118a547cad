"""Pieces of one file see the profiles as the pieces before them left them.

A file is applied a piece at a time (about 1 MiB each), each piece with one
key lookup and a few writes; the writes run on a thread of their own while
the next piece's rules run (`StoreQueue`). A key in several pieces running
must see, in each, what the piece before wrote: the rules (set,
set_if_empty, add, sum) give what one piece holding the whole file gives,
and a write that fails part way fails the file with nothing kept and no
thread left running.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_import_oracle import _apply, _connection

from connector.errors import StoreError
from connector.storage import PROFILE_ID, ProfileStore, SQLiteStore
from connector.storage.batches import Write


def _write_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("import-writes")]


RULES = [
    {"column": "c0", "property": "email", "rule": "set", "type": "text"},
    {"column": "c1", "property": "first", "rule": "set_if_empty", "type": "text"},
    {"column": "c2", "property": "tags", "rule": "add", "type": "text"},
    {"column": "c3", "property": "points", "rule": "sum", "type": "number"},
]


def _file(rows: list[list[str]]) -> bytes:
    return ("id;c0;c1;c2;c3\n" + "".join(";".join(row) + "\n" for row in rows)).encode()


def _scenario(match_property: str) -> dict[str, Any]:
    return {
        "mappings": [dict(rule) for rule in RULES],
        "match": {"column": "id", "property": match_property, "create_missing": True},
    }


def _rows() -> list[list[str]]:
    # 16-byte pieces hold a row or two: k1 in two pieces running, then k2, and so on;
    # k3 once in the middle
    rows = []
    for n in range(12):
        key = ["k1", "k1", "k2"][n % 3]
        rows.append([key, f"e{n}", f"f{n}" if n > 1 else "", f"t{n % 4}", str(n)])
        if n == 5:
            rows.append(["k3", "", "", "", "2,5"])
    return rows


def _stored(store: ProfileStore, match_property: str) -> dict[str, dict[str, list[str]]]:
    profiles = store.iter_profiles()
    if match_property == PROFILE_ID:
        return {profile.id: profile.properties for profile in profiles}
    return {profile.properties[match_property][0]: profile.properties for profile in profiles}


def _pieces_store(writes: str, tmp_path: Path, request: pytest.FixtureRequest) -> ProfileStore:
    if writes == "postgres":
        from connector.storage.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(request.getfixturevalue("postgres_url"))
    store = SQLiteStore(tmp_path / "pieces.db")
    store.binds_arrow_natively = writes == "own thread"
    return store


@pytest.mark.parametrize(
    "writes", ["own thread", "inline", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("match_property", ["customer_id", PROFILE_ID])
def test_keys_repeated_in_every_piece_see_what_the_piece_before_left(
    tmp_path: Path, match_property: str, writes: str, request: pytest.FixtureRequest
) -> None:
    """Every way a piece's writes run: on their own thread (SQLite bound natively, and
    PostgreSQL, whose driver waits for the server without the GIL), and before the next
    piece's lookup (SQLite without the native binding takes the GIL for every row)."""
    connection = _connection(_scenario(match_property))
    data = _file(_rows())
    with (
        SQLiteStore(tmp_path / "one.db") as whole,
        _pieces_store(writes, tmp_path, request) as pieces,
    ):
        with pieces.batch_transaction() as tx:
            assert tx.writes_release_the_gil == (writes != "inline")
        big = _apply(whole, connection, data, columnar=True, n=1, piece_bytes=8 << 20)
        small = _apply(pieces, connection, data, columnar=True, n=1, piece_bytes=16)
        assert not big.errors
        assert not small.errors
        assert _stored(pieces, match_property) == _stored(whole, match_property)
        counts = (small.counts.profiles_created, small.counts.rows_applied)
        assert counts == (big.counts.profiles_created, big.counts.rows_applied) == (3, 13)
        k1 = _stored(pieces, match_property)["k1"]
    # by hand: k1 has the rows 0, 1, 3, 4, 6, 7, 9, 10
    assert k1["email"] == ["e10"]
    assert k1["first"] == ["f3"]  # rows 0 and 1 have none: the first non-empty one
    assert k1["tags"] == ["t0", "t1", "t3", "t2"]  # union in the rows' order
    assert k1["points"] == ["40"]
    assert not _write_threads()  # the writes' thread ends with the file


@pytest.mark.parametrize(
    "writes", ["own thread", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_write_that_fails_mid_file_fails_the_file_and_keeps_nothing(
    tmp_path: Path, writes: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = _connection(_scenario("customer_id"))
    calls = {"update": 0}
    store = _pieces_store(writes, tmp_path, request)
    with store.batch_transaction() as tx:
        transaction = type(tx)
    real_update = transaction.encoded_update

    def second_update_fails(self: Any, profiles: Any, places: Any = None) -> Write:
        write = real_update(
            self, profiles, places
        )  # encoded on the rules' thread, as the engine does

        def run() -> None:
            calls["update"] += 1
            if calls["update"] == 2:
                raise StoreError("the disk is full")
            write()

        return run

    monkeypatch.setattr(transaction, "encoded_update", second_update_fails)
    with store:
        with pytest.raises(StoreError, match="the disk is full"):
            _apply(store, connection, _file(_rows()), columnar=True, n=1, piece_bytes=16)
        assert calls["update"] == 2  # nothing ran on the store after the failed write
        assert store.count_profiles() == 0
        assert store.ledger("oracle", "in") == {}
    assert not _write_threads()


@pytest.mark.parametrize(
    "writes", ["own thread", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_store_counts_a_files_profiles_only_when_it_changed_stored_ones(
    tmp_path: Path, writes: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that only creates profiles has exactly its new ones (each written once), so
    the store is not asked to count them; one that changes stored profiles is counted
    there (a profile changed in two pieces counts once)."""
    connection = _connection(_scenario("customer_id"))
    counted: list[int] = []
    with _pieces_store(writes, tmp_path, request) as store:
        with store.batch_transaction() as tx:
            real = type(tx).changed_profiles

        def counting(self: Any) -> tuple[int, int]:
            found = real(self)
            counted.append(found[1])
            return found

        monkeypatch.setattr(type(tx), "changed_profiles", counting)
        new_only = _file([[f"n{n}", f"e{n}", "", "", "1"] for n in range(6)])
        fresh = _apply(store, connection, new_only, columnar=True, n=1, piece_bytes=16)
        assert (fresh.counts.profiles_created, fresh.counts.profiles_updated) == (6, 0)
        assert counted == []
        # k1 and k2 are new in this file and changed again in later pieces; n1 and n2 are
        # stored and changed (n1 in two pieces)
        rows = [
            *_rows(),
            ["n1", "x", "", "", "1"],
            ["n2", "y", "", "", "1"],
            ["n1", "z", "", "", "1"],
        ]
        again = _apply(store, connection, _file(rows), columnar=True, n=2, piece_bytes=16)
        assert (again.counts.profiles_created, again.counts.profiles_updated) == (3, 2)
        assert counted == [5]


def test_a_property_named_like_the_lookup_s_rowid_column_imports_and_updates(
    tmp_path: Path,
) -> None:
    """SQLite's lookup gives each profile's rowid as its last column, named `rowid`: the
    engine reads the stored values by place, so a property of that name still works,
    through updates by rowid (small pieces, bound natively) or by id (the JSON path)."""
    rules = [
        dict(rule, property="rowid") if rule["property"] == "email" else rule for rule in RULES
    ]
    connection = _connection({**_scenario("customer_id"), "mappings": rules})
    again = [[key, f"x{n}", *rest] for n, (key, _email, *rest) in enumerate(_rows())]
    stored = []
    for native, piece_bytes in ((True, 16), (False, 8 << 20)):
        with SQLiteStore(tmp_path / f"{native}.db") as store:
            store.binds_arrow_natively = native
            for n, data in enumerate((_file(_rows()), _file(again)), start=1):
                applied = _apply(
                    store, connection, data, columnar=True, n=n, piece_bytes=piece_bytes
                )
                assert not applied.errors
            stored.append(_stored(store, "customer_id"))
    assert stored[0] == stored[1]
    assert stored[0]["k1"]["rowid"] == ["x11"]  # k1's last row of the second file
    assert stored[0]["k3"]["rowid"] == ["x6"]
    assert stored[0]["k1"]["points"] == ["80"]  # the second file added its points again
