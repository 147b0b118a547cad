"""The byte end of both export writers: encode, compress, hand out in bounded chunks.

`DelimitedWriter` (rows through `csv.writer`) and `ArrowWriter` (whole Arrow
tables) build the text differently but turn it into the upload's bytes the
same way, with the same error for a character the encoding lacks.
"""

from __future__ import annotations

import codecs
from typing import Protocol

from connector.config.formats import ExportFormat
from connector.errors import FormatError


class Compressor(Protocol):
    """A streaming gzip compressor (`zlib.compressobj`, `GzipStream`)."""

    def compress(self, data: bytes | memoryview, /) -> bytes: ...

    def flush(self) -> bytes: ...


class ByteOutput:
    """Encoded, optionally compressed bytes waiting to be handed to the upload.

    `rows_written` counts data rows (not the header); `bytes_out` counts the
    bytes handed out so far, the file's size once the writer has finished.
    """

    def __init__(
        self,
        fmt: ExportFormat,
        *,
        file: str,
        chunk_size: int,
        encoder: codecs.IncrementalEncoder | None,
        compressor: Compressor | None,
    ) -> None:
        """`encoder`: None writes text that already is the file's bytes (UTF-8)."""
        self._fmt = fmt
        self._file = file
        self._chunk_size = chunk_size
        self._encoder = encoder
        self._compressor = compressor
        self._out = bytearray()
        self._finished = False
        self.rows_written = 0
        self.bytes_out = 0

    def _encode(self, text: str, *, final: bool = False) -> bytes:
        """`text` in the file's encoding; a character it lacks is a `FormatError`."""
        assert self._encoder is not None  # noqa: S101 -- only called when transcoding
        try:
            encoded: bytes = self._encoder.encode(text, final)
        except UnicodeEncodeError as error:
            character = error.object[error.start : error.end]
            raise FormatError(
                f"{character!r} cannot be written in {self._fmt.encoding}; "
                "choose an encoding that has it, such as utf-8",
                file=self._file,
            ) from None
        return encoded

    def _emit(self, data: bytes | memoryview) -> None:
        if self._compressor is not None:
            self._out += self._compressor.compress(data)
        else:
            self._out += data

    def _hand_out(self, limit: int | None = None) -> bytes:
        """The first `limit` bytes waiting (all of them by default), counted in `bytes_out`."""
        if limit is None or limit >= len(self._out):
            data = bytes(self._out)
            self._out.clear()
        else:
            data = bytes(self._out[:limit])
            del self._out[:limit]
        self.bytes_out += len(data)
        return data

    def _close(self) -> bytes:
        """Everything still waiting, with the gzip trailer; the writer is then finished.

        The writer has given the encoder its final call first."""
        if self._compressor is not None:
            self._out += self._compressor.flush()
        self._finished = True
        return self._hand_out()

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("the writer is finished")
