"""Bytes to text for incoming delimited files: gunzip when the bytes say so, then decode.

The first stage of `connector.formats.reader` (which re-exports these names):
synchronous, one chunk and one bounded inflated piece in memory at a time. A
bad gzip stream, a possible gzip bomb, bytes that are not the configured
encoding and NUL characters raise `FormatError` naming the file and line.
"""

from __future__ import annotations

import codecs
import itertools
import zlib
from collections.abc import Iterable, Iterator

from connector.errors import FormatError

__all__ = [
    "GZIP_MAGIC",
    "INFLATE_PIECE",
    "INFLATION_FLOOR",
    "iter_decoded",
    "maybe_inflate",
    "nul_character",
    "undecodable",
]

GZIP_MAGIC = b"\x1f\x8b"
INFLATE_PIECE = 256 << 10
"""Most bytes one inflate step produces, so a small chunk cannot balloon in memory."""
INFLATION_FLOOR = 64 << 20
"""Below this many inflated bytes the ratio check stays quiet (tiny files compress well)."""


def iter_decoded(
    chunks: Iterable[bytes],
    *,
    encoding: str,
    file: str,
    max_inflation_ratio: int = 1000,
    inflation_floor: int = INFLATION_FLOOR,
) -> Iterator[str]:
    """Decode a file's byte chunks into text pieces, inflating gzip when the bytes say so.

    Gzip is recognised by its magic bytes, not the key's name, because files
    are often misnamed. A UTF-8 byte-order mark is dropped. The pieces follow
    the chunks and are not aligned to lines. `file` names the file in errors.
    """
    raw = maybe_inflate(iter(chunks), file, max_inflation_ratio, inflation_floor)
    return _decode(raw, encoding, file)


def maybe_inflate(
    chunks: Iterator[bytes], file: str, max_ratio: int = 1000, floor: int = INFLATION_FLOOR
) -> Iterator[bytes]:
    """The file's bytes, inflated in bounded pieces when they start with the gzip magic."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from chunks
        return
    yield from _inflate(head, chunks, file, max_ratio, floor)


def _inflate(
    head: bytes, chunks: Iterator[bytes], file: str, max_ratio: int, floor: int
) -> Iterator[bytes]:
    """Inflate concatenated gzip members in bounded pieces, refusing bombs and truncation.

    Zero bytes between or after members are padding (tape-era writers add it).
    """
    member: zlib._Decompress | None = None
    consumed = 0
    produced = 0
    for chunk in itertools.chain((head,), chunks):
        data = chunk
        while True:
            if member is None:
                data = data.lstrip(b"\x00")
                if not data:
                    break
                member = zlib.decompressobj(wbits=31)
            try:
                piece = member.decompress(data, INFLATE_PIECE)
            except zlib.error as error:
                raise FormatError(f"file is not valid gzip: {error}", file=file) from None
            consumed += len(data) - len(member.unconsumed_tail) - len(member.unused_data)
            if piece:
                produced += len(piece)
                if produced > floor and produced > max_ratio * consumed:
                    raise FormatError(
                        f"inflates more than {max_ratio}x: refusing a possible gzip bomb",
                        file=file,
                    )
                yield piece
            if member.eof:
                data = member.unused_data
                member = None
                continue
            data = member.unconsumed_tail
            if not data and len(piece) < INFLATE_PIECE:
                break
    if member is not None:
        raise FormatError("gzip data ends early (truncated file?)", file=file)


def _count_breaks(text: str) -> int:
    return text.count("\n") or text.count("\r")


def undecodable(error: UnicodeDecodeError, encoding: str, *, file: str, line: int) -> FormatError:
    """The error for bytes that are not `encoding`; `line` is where the failing buffer starts."""
    hint = (
        "set `format.encoding` (e.g. latin-1)"
        if codecs.lookup(encoding).name == "utf-8"
        else "set `format.encoding` to the file's encoding"
    )
    before = error.object[: error.start].decode(encoding, errors="replace")
    bad = " ".join(f"0x{byte:02x}" for byte in error.object[error.start : error.end])
    return FormatError(
        f"bytes {bad} are not valid {encoding}; {hint}",
        file=file,
        line=line + _count_breaks(before),
    )


def nul_character(before: str, *, file: str, line: int) -> FormatError:
    """The error for a NUL character after `before`, the text since `line` began."""
    return FormatError(
        "contains a NUL character (is the file UTF-16? set `format.encoding`)",
        file=file,
        line=line + _count_breaks(before),
    )


def _decode(raw: Iterator[bytes], encoding: str, file: str) -> Iterator[str]:
    utf8 = codecs.lookup(encoding).name == "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8-sig" if utf8 else encoding)()
    line = 1
    final = False
    while not final:
        chunk = next(raw, None)
        final = chunk is None
        try:
            text = decoder.decode(chunk or b"", final)
        except UnicodeDecodeError as error:
            raise undecodable(error, encoding, file=file, line=line) from None
        if not text:
            continue
        if "\x00" in text:
            raise nul_character(text[: text.index("\x00")], file=file, line=line)
        line += _count_breaks(text)
        yield text
