"""A file takes large pieces when it is the process's only import, smaller beside another.

Two imports at once at the larger size each took one daemon to the edge of
the 300 MB it keeps to (see `limits.PIECE_BYTES`): `PieceSizes` gives the
second file the smaller size while the first runs, and the larger again
once it is alone.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_import_oracle import _apply, _connection
from test_import_pieces_in_order import _file, _rows, _scenario

from connector.imports import _apply_file
from connector.imports._piece_size import PIECE_SIZES, PieceSizes
from connector.limits import PIECE_BYTES, PIECE_BYTES_SHARED
from connector.storage import SQLiteStore


def test_alone_a_file_takes_the_large_pieces_beside_another_the_small_ones() -> None:
    sizes = PieceSizes(alone=4, shared=2)
    with sizes.sized() as first:
        with sizes.sized() as second, sizes.sized() as third:
            assert (first, second, third) == (4, 2, 2)
        with sizes.sized() as after_second:
            assert after_second == 2  # the first still runs
    with sizes.sized() as alone_again:
        assert alone_again == 4


def test_a_size_chosen_for_the_file_is_kept_and_still_counts_as_an_import() -> None:
    sizes = PieceSizes(alone=4, shared=2)
    with sizes.sized(16) as chosen, sizes.sized() as beside:
        assert (chosen, beside) == (16, 2)


def test_a_file_that_fails_is_no_longer_counted() -> None:
    sizes = PieceSizes(alone=4, shared=2)
    with pytest.raises(RuntimeError), sizes.sized():
        raise RuntimeError("the file failed")
    with sizes.sized() as alone:
        assert alone == 4


def test_imports_in_threads_are_counted_together() -> None:
    sizes = PieceSizes(alone=4, shared=2)
    inside, leave = threading.Event(), threading.Event()

    def first_file() -> None:
        with sizes.sized():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=first_file)
    thread.start()
    inside.wait(5)
    with sizes.sized() as beside:
        assert beside == 2
    leave.set()
    thread.join()


def test_an_import_file_takes_its_size_from_the_process_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`apply_file` asks the registry when the run leaves the size to it (the default)."""
    sizes: list[int] = []
    real_reader = _apply_file.PieceReader

    def recording(*args: Any, piece_bytes: int, **kwargs: Any) -> Any:
        sizes.append(piece_bytes)
        return real_reader(*args, piece_bytes=piece_bytes, **kwargs)

    monkeypatch.setattr(_apply_file, "PieceReader", recording)
    connection = _connection(_scenario("customer_id"))
    data = _file(_rows())
    with SQLiteStore(tmp_path / "s.db") as store:
        alone = _apply(store, connection, data, columnar=True, n=1, piece_bytes=None)
        with PIECE_SIZES.sized():  # another file being imported in this process
            beside = _apply(store, connection, data, columnar=True, n=2, piece_bytes=None)
        chosen = _apply(store, connection, data, columnar=True, n=3, piece_bytes=16)
    assert [result.errors for result in (alone, beside, chosen)] == [[], [], []]
    assert sizes == [PIECE_BYTES, PIECE_BYTES_SHARED, 16]
