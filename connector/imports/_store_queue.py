"""A file's store statements, run in order on a thread of their own (or inline).

An import piece's writes (the new profiles, the changed ones) take most of
the time SQLite spends on a file, and through `_arrow_bind` they hold no GIL
while they run. `ProfileBatchApplier` queues each piece's writes here and
goes on with the next piece's rules while they run; its key lookups go
through the same queue, so every statement reaches the store's connection
one at a time and in the order the applier queued it. For a store whose
writes take the GIL back often (PostgreSQL), `background=False` runs each
statement when it is queued.

A write that fails is raised to the applier at its next `check`, `drain`
or `answer`; nothing queued after it runs. `close` waits for the
statement in progress: nothing uses the connection once the caller commits
or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["StoreQueue"]

T = TypeVar("T")


class StoreQueue:
    """One worker thread over one transaction's connection; first queued, first run.

    With `background=False` there is no thread: each statement runs when it is
    queued, in the caller's thread, with the same errors at the same calls.
    """

    def __init__(self, *, background: bool = True, name: str = "import-writes") -> None:
        self.background = background
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) if background else None
        )
        self._writes: list[Future[None]] = []
        self._failed: BaseException | None = None
        """The first error of a queued statement; set on the worker thread, read on the caller's."""

    def ask(self, statement: Callable[[], T]) -> Future[T]:
        """Queue a read; `answer` waits for its result."""
        return self._submit(statement)

    def answer(self, asked: Future[T]) -> T:
        """The result of a read from `ask` (or its error).

        A write queued before it that failed is raised instead: the result
        would describe a store that the failed write left half written.
        """
        result = asked.result()
        self.check()
        return result

    def write(self, statement: Callable[[], None]) -> None:
        """Queue `statement`; its error comes back from a later `check`, `read` or `drain`."""
        self.check()
        self._writes = [future for future in self._writes if not future.done()]
        self._writes.append(self._submit(statement))

    def check(self) -> None:
        """Raise the error of the first queued statement that failed, if one has."""
        if self._failed is not None:
            raise self._failed

    def drain(self) -> None:
        """Wait until every queued write has run; raise the first error."""
        for future in self._writes:
            future.exception()  # waits; the error itself is `_failed`
        self._writes = []
        self.check()

    def close(self) -> None:
        """Drop what has not started, wait for what has: the connection is the caller's again."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, statement: Callable[[], T]) -> Future[T]:
        if self._pool is not None:
            return self._pool.submit(self._run, statement)
        done: Future[T] = Future()
        try:
            done.set_result(self._run(statement))
        except BaseException as error:  # noqa: BLE001 -- handed over as a thread would
            done.set_exception(error)
        return done

    def _run(self, statement: Callable[[], T]) -> T:
        if self._failed is not None:
            # behind a failed write: the store is half written, run nothing more on it
            raise self._failed
        try:
            return statement()
        except BaseException as error:
            self._failed = error
            raise
