"""Sniffing a sample's dialect: bytes to text to records (encoding, separator, quote).

Pure functions over the first bytes of a file, for `connector draft`
(`connector.formats.sniff` puts the findings together). Each finding carries
the sentence that justifies it. Records are read with the same csv settings
the import uses, so what is counted here is what the import will see.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "EXAMPLES",
    "Finding",
    "decode_sample",
    "detect_dialect",
    "detect_encoding",
    "detect_quote_char",
    "read_records",
]

FIELD_SEPARATORS = (",", ";", "\t", "|", ":")
DIALECT_RECORDS = 500
"""Records parsed per candidate separator when choosing one."""
EXAMPLES = 3
"""Examples an evidence sentence names at the most."""
_QUOTE_SAMPLE = 64 << 10
"""Characters searched for quoted fields."""

_BOMS = (
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 little-endian"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 big-endian"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 little-endian"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 big-endian"),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected setting and the sentence that justifies it."""

    value: str
    evidence: str


# ---------------------------------------------------------------- bytes -> text


def detect_encoding(head: bytes) -> Finding:
    """UTF-8/16/32 by byte-order mark, then UTF-8 if it decodes, else Windows-1252 or Latin-1."""
    for bom, encoding, label in _BOMS:
        if head.startswith(bom):
            return Finding(encoding, f"a {label} byte-order mark starts the file")
    if head[:200].count(b"\x00") > len(head[:200]) // 4:
        even = head[0:200:2].count(b"\x00")
        odd = head[1:200:2].count(b"\x00")
        encoding = "utf-16-le" if odd > even else "utf-16-be"
        return Finding(encoding, "every other byte is zero and there is no byte-order mark")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as error:
        bad = head[error.start : error.start + 1].hex()
        if any(0x80 <= byte <= 0x9F for byte in head) and _decodes(head, "cp1252"):
            return Finding(
                "cp1252",
                f"not UTF-8 (byte 0x{bad} at offset {error.start}); bytes 0x80-0x9f are "
                "Windows-1252 punctuation",
            )
        return Finding("latin-1", f"not UTF-8 (byte 0x{bad} at offset {error.start})")
    if max(head, default=0) < 0x80:
        return Finding("utf-8", "plain ASCII (UTF-8 reads it)")
    return Finding("utf-8", "the sample is valid UTF-8 with non-ASCII characters")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decode_sample(head: bytes, encoding: str, *, truncated: bool) -> str:
    """The sample's text without a byte-order mark; a cut-off character at the end is dropped."""
    name = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    decoder = codecs.getincrementaldecoder(name)(errors="replace")
    text = decoder.decode(head, final=not truncated)
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------- text -> records


def read_records(
    text: str,
    separator: str,
    quote_char: str,
    *,
    truncated: bool,
    limit: int | None = None,
    problems: list[str] | None = None,
) -> list[list[str]]:
    """The sample's records, blank lines left out, as the import's csv settings read them.

    A truncated sample loses its last record (it may be cut in the middle).
    A record the csv module cannot read is left out and parsing goes on, as
    the import rejects that record and goes on; its csv error is added to
    `problems` when given.
    """
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=separator,
        quotechar=quote_char,
        doublequote=True,
        strict=True,
    )
    records: list[list[str]] = []
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, len(text) + 1))
    last_ok = False
    try:
        while limit is None or len(records) < limit:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                last_ok = False  # a malformed record is left out; the reader goes on after it
                if problems is not None and not (truncated and "end of data" in str(error)):
                    problems.append(_problem(str(error), start, quote_char))
                continue
            if record:
                records.append(record)
                last_ok = True
        else:
            return records
    finally:
        csv.field_size_limit(previous)
    if truncated and last_ok:
        records.pop()
    return records


def _problem(message: str, line: int, quote_char: str) -> str:
    """A csv error as the analyst needs it: where, and what the import will do."""
    if "end of data" in message:
        return (
            f"a field quoted with {quote_char} on line {line} is never closed: "
            "the import fails such a file"
        )
    if "expected after" in message:
        return f"line {line}: text follows a closing {quote_char}: the import rejects that record"
    return f"line {line}: {message}: the import rejects that record"


def detect_quote_char(text: str, separator: str) -> Finding:
    """The quote that opens and closes whole fields most often; `"` when nothing is quoted."""
    sep = re.escape(separator)
    head = text[:_QUOTE_SAMPLE]
    counts = {}
    for quote in ('"', "'"):
        q = re.escape(quote)
        wrapped = rf"(?:^|{sep}){q}(?:[^{q}]|{q}{q})*{q}(?={sep}|\r?$)"
        counts[quote] = len(re.findall(wrapped, head, re.M))
    single, double = counts["'"], counts['"']
    if single > double:
        return Finding("'", f"{single} fields are wrapped in ' (and {double} in \")")
    if double:
        return Finding('"', f'{double} fields are wrapped in "')
    return Finding('"', 'no quoted fields in the sample; " is the usual quote')


def detect_dialect(text: str, *, truncated: bool) -> tuple[Finding, Finding]:
    """The field separator (and its quote char): the one giving the most consistent field counts."""
    best: tuple[tuple[int, float, int], str, Finding, str] | None = None
    for separator in FIELD_SEPARATORS:
        quote = detect_quote_char(text, separator)
        records = read_records(
            text, separator, quote.value, truncated=truncated, limit=DIALECT_RECORDS
        )
        if not records:
            continue
        counts = Counter(len(record) for record in records)
        fields, seen = counts.most_common(1)[0]
        consistent = seen / len(records)
        score = (int(fields > 1), round(consistent, 3), fields)
        if best is None or score > best[0]:
            evidence = f"{fields} fields on {seen:,} of the first {len(records):,} records"
            best = (score, separator, quote, evidence)
    if best is None or best[0][0] == 0:
        return (
            Finding(",", "every record has a single field with each candidate; , is the default"),
            Finding('"', 'no quoted fields in the sample; " is the usual quote'),
        )
    _score, separator, quote, evidence = best
    return Finding(separator, evidence), quote
