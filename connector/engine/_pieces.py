r"""Cut a file's UTF-8 bytes into pieces of about a given size that end on a line break.

A piece ends just after a `\n` with an even number of quote characters before
it in the piece, which is a record boundary when the quoting is well formed.
When it is not (a stray quote), or no such line break comes within another
`size` bytes, the piece ends at the last line break: its parser then finds
the record still open at the end and gives the text back (`unread`), so a
cut never changes how records are read. A cut never falls between `\r` and
`\n`. Each piece knows its first physical line, counting line breaks as the
csv reader does (`\r\n`, `\r` and `\n` each end a line).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connector.formats.reader import line_too_long

__all__ = ["Cut", "Cutter", "line_breaks"]


def line_breaks(data: bytes) -> tuple[int, bool]:
    r"""How many lines `data` ends, and whether any ends with a lone `\r`."""
    breaks = data.count(b"\n")
    if b"\r" not in data:
        return breaks, False
    lone = data.count(b"\r") - data.count(b"\r\n")
    return breaks + lone, lone > 0


@dataclass(frozen=True, slots=True)
class Cut:
    """One piece of the file: its bytes, first line, line breaks and place."""

    data: bytes
    line: int
    breaks: int
    lone_cr: bool
    last: bool


class Cutter:
    """Hands out pieces of a byte stream; holds at most about two pieces and a chunk."""

    def __init__(self, chunks: Iterator[bytes], *, quote: bytes, file: str, max_line: int) -> None:
        self._chunks = chunks
        self._quote = quote
        self._file = file
        self._max_line = max_line
        self._buffer = bytearray()
        self._line = 1
        self._done = False
        self._waiting = 0
        self._scanned = -1
        self._odd = 0
        self._force_at = 0

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
                if len(buffer) >= max(2 * size, self._force_at):
                    cut = self._last_break()
                    if cut:
                        break
            self._read()
        if not cut:
            return None
        data = bytes(buffer[:cut])
        del buffer[:cut]
        self._scanned = -1
        self._force_at = 0
        breaks, lone_cr = line_breaks(data)
        line = self._line
        self._line += breaks
        return Cut(data, line, breaks, lone_cr, self._done and not buffer)

    def unread(self, data: bytes, line: int) -> None:
        """Put back the end of the last piece (an unfinished record starting on `line`).

        The next forced cut waits until the buffer has doubled, so a long
        record is re-read a logarithmic number of times, not once per chunk.
        """
        self._buffer[:0] = data
        self._line = line
        self._scanned = -1
        self._force_at = 2 * len(self._buffer)

    def _read(self) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            return
        self._buffer += chunk
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end >= 0:
            self._waiting = len(chunk) - end - 1
            return
        self._waiting += len(chunk)
        if self._waiting > self._max_line:
            start = max(self._buffer.rfind(b"\n"), self._buffer.rfind(b"\r")) + 1
            line = self._line + line_breaks(bytes(self._buffer[:start]))[0]
            raise line_too_long(self._max_line, file=self._file, line=line)

    def _boundary(self, size: int) -> int:
        r"""Index after the first `\n` at or past `size` with even quotes before it, or 0.

        The scan resumes where the previous call stopped, so waiting for more
        data costs nothing extra.
        """
        buffer, quote = self._buffer, self._quote
        if self._scanned < 0:
            self._scanned = min(size, len(buffer))
            self._odd = buffer.count(quote, 0, self._scanned) & 1
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
        r"""Index after the last line break, never between `\r` and `\n`; 0 if none."""
        buffer = self._buffer
        return max(buffer.rfind(b"\n"), buffer.rfind(b"\r", 0, len(buffer) - 1)) + 1
