"""A bounded hand-over of byte chunks from the async S3 reader to the parsing thread.

The event loop downloads while a worker thread parses and applies: two
stages on two cores, with memory bounded by `maxsize` chunks.

Neither side polls. The thread sleeps on a condition until a chunk (or the
end) arrives; the reader, when the channel is full, awaits a future that the
thread resolves through `loop.call_soon_threadsafe` as soon as it takes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterable, Iterator


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wake_soon(waiter: _Waiter | None) -> None:
    """Resolve the producer's future on its own loop, from any thread."""
    if waiter is None:
        return
    loop, future = waiter
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        loop.call_soon_threadsafe(_wake, future)


class ChunkChannel:
    """Producer side is async (`pump`); consumer side is a plain iterator for a thread."""

    def __init__(self, maxsize: int = 4) -> None:
        self._maxsize = maxsize
        self._items: deque[bytes | _End] = deque()
        self._changed = threading.Condition(threading.Lock())
        self._abandoned = False
        self._space: _Waiter | None = None
        """The producer's future while it waits for room: resolved when the thread takes one."""
        self._recorded: list[bytes] | None = None
        self._replay: list[bytes] = []
        self.consumed = 0
        """Bytes handed to the consumer so far (a replayed chunk counts once): its progress."""

    def record(self) -> None:
        """Keep the chunks read from now on, so a second reader can start from them."""
        self._recorded = []

    def stop_recording(self) -> None:
        self._recorded = None

    def rewind(self) -> None:
        """The next iteration starts with the chunks recorded, then goes on with the rest."""
        self._replay, self._recorded = self._recorded or [], None

    async def pump(self, chunks: AsyncIterable[bytes]) -> None:
        """Feed every chunk, then the end; an error of the source reaches the consumer."""
        try:
            async for chunk in chunks:
                if not await self._put(chunk):
                    return
        except Exception as error:  # noqa: BLE001 -- handed to the consumer, which re-raises it
            await self._put(_End(error))
            return
        await self._put(_End(None))

    async def _put(self, item: bytes | _End) -> bool:
        loop = asyncio.get_running_loop()
        while True:
            with self._changed:
                if self._abandoned:
                    return False
                if len(self._items) < self._maxsize:
                    self._items.append(item)
                    self._changed.notify()
                    return True
                space: asyncio.Future[None] = loop.create_future()
                self._space = (loop, space)
            await space

    def abandon(self) -> None:
        """The consumer stops early (a bad file): let the producer finish without waiting."""
        with self._changed:
            self._abandoned = True
            self._changed.notify_all()
            waiter, self._space = self._space, None
        _wake_soon(waiter)

    def _get(self) -> bytes | _End | None:
        """The next item, waiting without a timeout; None once abandoned and drained."""
        with self._changed:
            while not self._items:
                if self._abandoned:
                    return None
                self._changed.wait()
            item = self._items.popleft()
            waiter, self._space = self._space, None
        _wake_soon(waiter)
        return item

    def __iter__(self) -> Iterator[bytes]:
        replay, self._replay = self._replay, []
        self.consumed -= sum(len(chunk) for chunk in replay)
        for chunk in replay:
            self.consumed += len(chunk)
            yield chunk
        while (item := self._get()) is not None:
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            if self._recorded is not None:
                self._recorded.append(item)
            self.consumed += len(item)
            yield item
