"""A bounded hand-over of byte chunks from the async S3 reader to the parsing thread.

The event loop downloads while a worker thread parses and applies: two
stages on two cores, with memory bounded by `maxsize` chunks.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterable, Iterator

_POLL_SECONDS = 0.05


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ChunkChannel:
    """Producer side is async (`pump`); consumer side is a plain iterator for a thread."""

    def __init__(self, maxsize: int = 4) -> None:
        self._queue: queue.Queue[bytes | _End] = queue.Queue(maxsize)
        self._abandoned = threading.Event()
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
        while not self._abandoned.is_set():
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                await asyncio.sleep(_POLL_SECONDS)
            else:
                return True
        return False

    def abandon(self) -> None:
        """The consumer stops early (a bad file): let the producer finish without waiting."""
        self._abandoned.set()

    def __iter__(self) -> Iterator[bytes]:
        replay, self._replay = self._replay, []
        self.consumed -= sum(len(chunk) for chunk in replay)
        for chunk in replay:
            self.consumed += len(chunk)
            yield chunk
        while True:
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._abandoned.is_set():
                    return
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            if self._recorded is not None:
                self._recorded.append(item)
            self.consumed += len(item)
            yield item
