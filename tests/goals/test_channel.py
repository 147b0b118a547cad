"""ChunkChannel: bounded, non-polling hand-over from the event loop to a parsing thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest

from connector.imports.channel import ChunkChannel


async def chunks(count: int, fail: bool = False) -> AsyncIterator[bytes]:
    for number in range(count):
        yield b"%d," % number
    if fail:
        raise OSError("connection reset")


async def test_every_chunk_reaches_the_thread_in_order_with_its_progress() -> None:
    channel = ChunkChannel(maxsize=2)
    producer = asyncio.create_task(channel.pump(chunks(100)))
    received = await asyncio.to_thread(list, channel)
    await producer
    assert b"".join(received) == b"".join(b"%d," % n for n in range(100))
    assert channel.consumed == len(b"".join(received))


async def test_the_reader_waits_for_room_so_memory_stays_bounded() -> None:
    channel = ChunkChannel(maxsize=3)
    producer = asyncio.create_task(channel.pump(chunks(10)))
    await asyncio.sleep(0.2)
    assert not producer.done()  # three chunks in, the fourth waits: nothing taken yet
    received = await asyncio.to_thread(list, channel)
    await asyncio.wait_for(producer, 5)
    assert len(received) == 10


async def test_an_error_of_the_source_is_raised_in_the_thread() -> None:
    channel = ChunkChannel()
    producer = asyncio.create_task(channel.pump(chunks(2, fail=True)))
    with pytest.raises(OSError, match="connection reset"):
        await asyncio.to_thread(list, channel)
    await producer


async def test_abandon_frees_a_reader_waiting_for_room_at_once() -> None:
    channel = ChunkChannel(maxsize=1)
    producer = asyncio.create_task(channel.pump(chunks(1000)))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    channel.abandon()
    await asyncio.wait_for(producer, 5)
    assert time.monotonic() - started < 1


async def test_abandon_wakes_a_thread_waiting_for_a_chunk() -> None:
    channel = ChunkChannel()
    never: asyncio.Event = asyncio.Event()

    async def silent() -> AsyncIterator[bytes]:
        await never.wait()
        yield b""

    producer = asyncio.create_task(channel.pump(silent()))
    done = threading.Event()

    def consume() -> list[bytes]:
        try:
            return list(channel)
        finally:
            done.set()

    consumer = asyncio.create_task(asyncio.to_thread(consume))
    await asyncio.sleep(0.1)
    assert not done.is_set()  # waiting, not returning early
    channel.abandon()
    assert await asyncio.wait_for(consumer, 5) == []
    producer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await producer


async def test_a_recorded_start_is_replayed_before_the_rest() -> None:
    channel = ChunkChannel(maxsize=2)
    producer = asyncio.create_task(channel.pump(chunks(5)))

    def sniff_then_read() -> list[bytes]:
        channel.record()
        first = next(iter(channel))
        channel.rewind()
        return [first, *channel]

    received = await asyncio.to_thread(sniff_then_read)
    await producer
    assert received[0] == received[1] == b"0,"
    assert b"".join(received[1:]) == b"".join(b"%d," % n for n in range(5))
