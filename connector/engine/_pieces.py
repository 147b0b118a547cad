r"""Cut a file's UTF-8 bytes into pieces of about a given size that end on a line break.

A piece ends just after a `\n` with an even number of quote characters before
it in the piece, which is a record boundary when the quoting is well formed.
When it is not (a stray quote), or no such line break comes within another
`size` bytes, the piece ends at the last line break: its parser then finds
the record still open at the end and gives the text back (`unread`), so a
cut never changes how records are read. A cut never falls between `\r` and
`\n`. Each piece knows its first physical line, counting line breaks as the
csv reader does (`\r\n`, `\r` and `\n` each end a line).

Quotes and line feeds are counted once per chunk as it arrives; a piece's
counts are the buffer's minus those of the (small) rest after the cut.
Chunks without any line break wait in a list, so a very long line does not
make the buffer grow (and copy) chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connector.formats.reader import line_too_long

__all__ = ["Cut", "Cutter", "line_breaks"]


def line_breaks(data: bytes, newlines: int | None = None) -> tuple[int, bool]:
    r"""How many lines `data` ends, and whether any ends with a lone `\r`."""
    breaks = data.count(b"\n") if newlines is None else newlines
    if b"\r" not in data:
        return breaks, False
    lone = data.count(b"\r") - data.count(b"\r\n")
    return breaks + lone, lone > 0


@dataclass(frozen=True, slots=True)
class Cut:
    """One piece of the file: its bytes, first line, line breaks, quotes and place."""

    data: bytes
    line: int
    breaks: int
    lone_cr: bool
    quotes: int
    last: bool


class Cutter:
    """Hands out pieces of a stream of (bytes, line feeds in them); holds about two pieces."""

    def __init__(
        self, chunks: Iterator[tuple[bytes, int]], *, quote: bytes, file: str, max_line: int
    ) -> None:
        self._chunks = chunks
        self._quote = quote
        self._file = file
        self._max_line = max_line
        self._buffer = bytearray()
        self._pending: list[bytes] = []
        self._pending_quotes = 0
        self._quotes = 0
        self._newlines = 0
        self._line = 1
        self._done = False
        self._waiting = 0
        self._break_end = 0
        self._scanned = -1
        self._odd = 0
        self._given_back = 0

    def next(self, size: int) -> Cut | None:
        """The next piece of at least `size` bytes (less only at the end), or None."""
        buffer = self._buffer
        while True:
            if self._done or len(buffer) >= size:
                cut = self._boundary(size)
                if cut:
                    break
                if self._done:
                    cut = len(buffer)
                    break
                if len(buffer) >= 2 * max(size, self._given_back):
                    cut = self._last_break()
                    if cut:
                        break
            self._read()
        if not cut:
            return None
        with memoryview(buffer) as view:
            data = bytes(view[:cut])  # one copy (slicing the bytearray would make two)
        quotes = self._quotes - buffer.count(self._quote, cut)
        newlines = self._newlines - buffer.count(b"\n", cut)
        del buffer[:cut]
        self._quotes -= quotes
        self._newlines -= newlines
        self._break_end = max(0, self._break_end - cut)
        self._scanned = -1
        self._given_back = 0
        breaks, lone_cr = line_breaks(data, newlines)
        line = self._line
        self._line += breaks
        return Cut(data, line, breaks, lone_cr, quotes, self._done and not buffer)

    def unread(self, data: bytes, line: int) -> None:
        """Put back the end of the last piece (an unfinished record starting on `line`).

        The next cut falls after it, and a forced one waits until twice as
        much is buffered, so a long record is re-read a logarithmic number of
        times, not once per chunk.
        """
        self._buffer[:0] = data
        self._quotes += data.count(self._quote)
        self._newlines += data.count(b"\n")
        self._break_end += len(data) if self._break_end else 0
        self._line = line
        self._scanned = -1
        self._given_back = len(data)

    def _read(self) -> None:
        got = next(self._chunks, None)
        if got is None:
            self._done = True
            self._flush()
            return
        chunk, newlines = got
        quotes = chunk.count(self._quote)
        usable = max(chunk.rfind(b"\n"), chunk.rfind(b"\r", 0, len(chunk) - 1))
        end = max(usable, chunk.rfind(b"\r"))
        if end < 0:
            self._pending.append(chunk)
            self._pending_quotes += quotes
            self._waiting += len(chunk)
            if self._waiting > self._max_line:
                start = max(self._buffer.rfind(b"\n"), self._buffer.rfind(b"\r")) + 1
                line = self._line + line_breaks(bytes(self._buffer[:start]))[0]
                raise line_too_long(self._max_line, file=self._file, line=line)
            return
        self._flush()
        start = len(self._buffer)
        self._buffer += chunk
        self._quotes += quotes
        self._newlines += newlines
        if usable >= 0:
            self._break_end = start + usable + 1
        self._waiting = len(chunk) - end - 1

    def _flush(self) -> None:
        if self._pending:
            self._buffer += b"".join(self._pending)
            self._quotes += self._pending_quotes
            self._pending.clear()
            self._pending_quotes = 0

    def _boundary(self, size: int) -> int:
        r"""Index after the first `\n` at or past `size` with even quotes before it, or 0.

        The scan resumes where the previous call stopped, so waiting for more
        data costs nothing extra.
        """
        buffer, quote = self._buffer, self._quote
        if self._scanned < 0:
            self._scanned = min(max(size, self._given_back), len(buffer))
            self._odd = (self._quotes - buffer.count(quote, self._scanned)) & 1
        position = self._scanned
        while True:
            newline = buffer.find(b"\n", position)
            if newline < 0:
                self._odd ^= buffer.count(quote, position) & 1
                self._scanned = len(buffer)
                return 0
            self._odd ^= buffer.count(quote, position, newline) & 1
            position = newline + 1
            if not self._odd:
                return position
            self._scanned = position

    def _last_break(self) -> int:
        r"""Index after the last line break read (never between `\r` and `\n`), or 0.

        Tracked as chunks arrive, so waiting for a break costs no rescans.
        """
        return self._break_end if self._break_end > self._given_back else 0
