"""An incoming file's bytes as checked UTF-8, for parsers that read bytes (pyarrow.csv).

It raises the whole-file errors of `reader.iter_decoded` (gzip, bad bytes,
NUL) at the same lines, but does not keep the text: UTF-8 is validated chunk
by chunk with `codecs.utf_8_decode`, the step the incremental decoder itself
runs, so error offsets and the bytes carried over between chunks are the
same. Other encodings are decoded by `iter_decoded` and re-encoded.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator

from connector.formats.reader import iter_decoded, maybe_inflate, nul_character, undecodable

__all__ = ["utf8_bytes"]


def utf8_bytes(chunks: Iterable[bytes], encoding: str, *, file: str) -> Iterator[tuple[bytes, int]]:
    """The file as UTF-8 byte chunks, each with its count of line feeds.

    Inflated, a leading UTF-8 BOM dropped, not aligned to lines.
    """
    if codecs.lookup(encoding).name != "utf-8":
        texts = iter_decoded(chunks, encoding=encoding, file=file)
        return ((data, data.count(b"\n")) for data in (text.encode() for text in texts))
    return _checked(maybe_inflate(iter(chunks), file), file)


def _checked(raw: Iterator[bytes], file: str) -> Iterator[tuple[bytes, int]]:
    r"""Validate like the `utf-8-sig` incremental decoder; `line` counts as `_decode` does.

    `_decode` adds `text.count("\n") or text.count("\r")` per chunk; held-back
    bytes of an unfinished character are never line breaks, so counting the
    validated bytes gives the same numbers.
    """
    line = 1
    held = b""
    at_start = True
    for chunk in raw:
        data = held + chunk if held else chunk
        if at_start:
            if len(data) < len(codecs.BOM_UTF8) and codecs.BOM_UTF8.startswith(data):
                held = data
                continue
            at_start = False
            data = data.removeprefix(codecs.BOM_UTF8)
        try:
            _, used = codecs.utf_8_decode(data, "strict", False)
        except UnicodeDecodeError as error:
            raise undecodable(error, "utf-8", file=file, line=line) from None
        held = data[used:]
        good = data[:used] if held else data
        if not good:
            continue
        if b"\x00" in good:
            before = good[: good.index(b"\x00")].decode()
            raise nul_character(before, file=file, line=line)
        newlines = good.count(b"\n")
        line += newlines or good.count(b"\r")
        yield good, newlines
    if held and not at_start:
        try:
            codecs.utf_8_decode(held, "strict", True)
        except UnicodeDecodeError as error:
            raise undecodable(error, "utf-8", file=file, line=line) from None
