"""The rows of a run as delimited bytes, cut into parts of at most `max_rows_per_file` rows.

A run writes one output file, or two with `exits: file` (the data file and
its `_exited` sibling). Each is written as parts: with `max_rows_per_file`
a part is closed when it holds that many rows and the next one starts
(header included), so each part is its own gzip stream and a partner can
open any part alone. A part is opened at its first row, so a part never
ends up empty; only a run without any row gets one (header-only) file when
`empty_file` (a full or first export), because an empty segment is news
too. With exits in their own file, a run that writes either file writes both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from connector.formats.arrow_writer import ArrowWriter

__all__ = ["Chunk", "PartWriters"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes of the current part; `part_rows` is set on the chunk that completes the part."""

    data: bytes
    part_rows: int | None = None
    stream: int = 0
    """0: the data file; 1: the `_exited` sibling (`exits: file`)."""


@dataclass(slots=True)
class _Stream:
    """One output file (split into parts): the data file, or the `_exited` sibling."""

    number: int
    new_writer: Callable[[int], ArrowWriter]
    writer: ArrowWriter | None = None
    parts: int = 0


class PartWriters:
    """The run's output files, one writer per open part; each call returns the ready bytes."""

    def __init__(
        self,
        new_writers: list[Callable[[int], ArrowWriter]],
        headers: list[str],
        *,
        max_rows: int | None,
        empty_file: bool,
    ) -> None:
        self._streams = [_Stream(n, new) for n, new in enumerate(new_writers)]
        self._headers = headers
        self._max_rows = max_rows
        self._empty_file = empty_file

    def __len__(self) -> int:
        """How many output files the run writes."""
        return len(self._streams)

    def write(self, tables: list[pa.Table]) -> list[Chunk]:
        """Write one table of cells per output file, closing a part whenever it is full."""
        chunks: list[Chunk] = []
        for stream, cells in zip(self._streams, tables, strict=True):
            chunks += self._write(stream, cells)
        return chunks

    def finish(self) -> list[Chunk]:
        """Close the open parts, and open (then close) the files the run must write empty."""
        chunks: list[Chunk] = []
        wrote = any(stream.parts or stream.writer for stream in self._streams)
        for stream in self._streams:
            if stream.writer is not None or (stream.parts == 0 and (wrote or self._empty_file)):
                if stream.writer is None:
                    self._open_part(stream)
                chunks.append(self._close_part(stream))
        return chunks

    def _write(self, stream: _Stream, cells: pa.Table) -> list[Chunk]:
        chunks: list[Chunk] = []
        rows, start = cells.num_rows, 0
        while start < rows:
            writer = stream.writer or self._open_part(stream)
            end = rows if self._max_rows is None else start + self._max_rows - writer.rows_written
            writer.write_table(cells.slice(start, min(end, rows) - start))
            chunks += self._drain(stream, writer)
            start = end
            if self._max_rows is not None and writer.rows_written >= self._max_rows:
                chunks.append(self._close_part(stream))
        return chunks

    def _open_part(self, stream: _Stream) -> ArrowWriter:
        stream.parts += 1
        writer = stream.new_writer(stream.parts)
        writer.write_header(self._headers)
        stream.writer = writer
        return writer

    @staticmethod
    def _close_part(stream: _Stream) -> Chunk:
        writer, stream.writer = stream.writer, None
        if writer is None:
            raise RuntimeError("no part is open")
        return Chunk(writer.finish(), writer.rows_written, stream.number)

    @staticmethod
    def _drain(stream: _Stream, writer: ArrowWriter) -> list[Chunk]:
        """The writer's ready bytes, in pieces of its chunk size (an upload gets bounded parts)."""
        chunks = []
        while data := writer.drain():
            chunks.append(Chunk(data, stream=stream.number))
        return chunks
