"""How large a piece each import file takes: larger alone, smaller beside another import.

A larger piece costs less a row (fewer Arrow calls and store statements for
the same rows), and more memory: the engine holds about three pieces of a
file at once (one converted ahead, one applied, one being written). One
import at a time, 1.5 MiB pieces (with the rules' shortcuts, measured
together) ran about a tenth faster than 1 MiB and stay well under the
300 MB a process keeps to; two imports at once at 1.5 MiB each came to
298 MB (see `limits.PIECE_BYTES`). So a file takes
`PIECE_BYTES` when no other file of the process is being imported,
`PIECE_BYTES_SHARED` when one is (a daemon running several connections'
imports at the same time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from connector.limits import PIECE_BYTES, PIECE_BYTES_SHARED

__all__ = ["PIECE_SIZES", "PieceSizes"]


class PieceSizes:
    """The files being imported in this process, and the piece size each may take."""

    def __init__(self, alone: int, shared: int) -> None:
        self._alone = alone
        self._shared = shared
        self._running = 0
        self._lock = threading.Lock()

    @contextmanager
    def sized(self, chosen: int | None = None) -> Iterator[int]:
        """A file's piece size while it is imported: `chosen` when given (tests), else by
        the files already being imported when it starts."""
        with self._lock:
            others = self._running
            self._running += 1
        try:
            if chosen is not None:
                yield chosen
            else:
                yield self._alone if others == 0 else self._shared
        finally:
            with self._lock:
                self._running -= 1


PIECE_SIZES = PieceSizes(PIECE_BYTES, PIECE_BYTES_SHARED)
"""The process's one registry: every import file goes through it (`apply_file`)."""
