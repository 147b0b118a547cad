"""The engine's file loop converts the next piece in a thread while it applies this one.

`_apply_pieces` with a recording applier: the order stays the file's, the
converting thread runs at most one piece ahead, and whatever ends the loop
early (an error while applying or converting, a stop request) leaves no
thread behind and the byte channel abandoned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from connector.engine.piece_steps import ConvertedPiece
from connector.errors import FormatError, RunStopped, StoreError
from connector.goals.context import GoalResult, NoProgress
from connector.imports._apply_file import _apply_pieces
from connector.imports.channel import ChunkChannel
from connector.sources import S3Object
from connector.storage import RowReject

THREAD = "import-pieces"


@dataclass
class FakePiece:
    number: int
    records: int = 10


@dataclass
class RecordingApplier:
    """Converts and applies fake pieces, noting which thread did what and how far ahead."""

    fail_at: int | None = None
    stop_at: int | None = None
    stopping: threading.Event | None = None
    converted: list[tuple[int, str]] = field(default_factory=list)
    applied: list[tuple[int, str]] = field(default_factory=list)
    most_ahead: int = 0

    def convert(self, piece: Any) -> ConvertedPiece:
        self.converted.append((piece.number, threading.current_thread().name))
        self.most_ahead = max(self.most_ahead, len(self.converted) - len(self.applied))
        problems = [RowReject("f.csv", piece.number, None, "a problem")]
        return ConvertedPiece(piece, "f.csv", None, {}, problems)

    def apply(self, converted: ConvertedPiece) -> list[RowReject]:
        number = converted.piece.number  # type: ignore[attr-defined]
        if number == self.fail_at:
            raise StoreError("the store refused")
        if number == self.stop_at and self.stopping is not None:
            self.stopping.set()
        self.applied.append((number, threading.current_thread().name))
        return list(converted.problems)


def context(stopping: threading.Event | None = None) -> Any:
    return SimpleNamespace(
        stopping=stopping or threading.Event(), max_rejects=100, progress=NoProgress()
    )


def run(applier: RecordingApplier, pieces: Any, ctx: Any = None) -> tuple[int, GoalResult]:
    result = GoalResult()
    channel = ChunkChannel()
    obj = S3Object("f.csv", 1, "etag", datetime(2026, 1, 1, tzinfo=UTC))
    read = _apply_pieces(ctx or context(), obj, channel, pieces, applier, result)  # type: ignore[arg-type]
    return read, result


def no_piece_thread_left() -> bool:
    return not any(thread.name == THREAD for thread in threading.enumerate())


def test_pieces_are_converted_one_ahead_in_a_thread_and_applied_in_file_order() -> None:
    applier = RecordingApplier()

    read, result = run(applier, [FakePiece(number) for number in range(1, 8)])

    assert read == 70
    assert [number for number, _ in applier.applied] == list(range(1, 8))
    assert {name for _, name in applier.converted} == {THREAD}
    assert {name for _, name in applier.applied} == {threading.current_thread().name}
    assert applier.most_ahead <= 2  # the piece being applied and the one converted ahead
    assert [reject.line for reject in result.rejects] == list(range(1, 8))
    assert no_piece_thread_left()


def test_an_error_while_applying_stops_the_converting_thread() -> None:
    applier = RecordingApplier(fail_at=3)

    with pytest.raises(StoreError, match="refused"):
        run(applier, (FakePiece(number) for number in range(1, 100)))

    assert [number for number, _ in applier.applied] == [1, 2]
    assert len(applier.converted) <= 4  # never the whole file
    assert no_piece_thread_left()


def test_an_error_while_reading_reaches_the_loop_at_its_piece() -> None:
    def pieces() -> Iterator[FakePiece]:
        yield FakePiece(1)
        yield FakePiece(2)
        raise FormatError("an unclosed quote", file="f.csv", line=21)

    applier = RecordingApplier()

    with pytest.raises(FormatError, match=r"f\.csv:21"):
        run(applier, pieces())

    assert [number for number, _ in applier.applied] == [1, 2]
    assert no_piece_thread_left()


def test_a_stop_between_pieces_ends_the_file_and_its_thread() -> None:
    stopping = threading.Event()
    applier = RecordingApplier(stop_at=2, stopping=stopping)

    with pytest.raises(RunStopped, match="rolled back"):
        run(applier, (FakePiece(number) for number in range(1, 100)), context(stopping))

    assert [number for number, _ in applier.applied] == [1, 2]
    assert no_piece_thread_left()


def test_a_thread_waiting_for_bytes_is_released_when_the_loop_fails() -> None:
    """The converting thread blocks on the byte channel; a failure abandons the channel."""
    channel = ChunkChannel()
    applier = RecordingApplier(fail_at=1)

    def waiting_pieces() -> Iterator[FakePiece]:
        yield FakePiece(1)
        for _ in channel:  # nothing ever arrives: only `abandon` ends this wait
            pass
        yield FakePiece(2)

    obj = S3Object("f.csv", 1, "etag", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(StoreError):
        _apply_pieces(context(), obj, channel, waiting_pieces(), applier, GoalResult())  # type: ignore[arg-type]

    assert no_piece_thread_left()
