"""A file takes large pieces when it is the process's only import, smaller beside another.

Two imports at once at the larger size each took one daemon to the edge of
the 300 MB it keeps to (see `limits.PIECE_BYTES`): `PieceSizes` gives the
second file the smaller size while the first runs, and the larger again
once it is alone.
"""

from __future__ import annotations

import threading

import pytest

from connector.imports._piece_size import PieceSizes


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
