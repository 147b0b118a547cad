"""Which built export rows are written: `required` columns and `dedupe_by` keys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from connector.config.formats import ExportFormat

__all__ = ["RowRules"]


class RowRules:
    """`required` and `dedupe_by` of one export run: which built rows are written.

    A row misses a required column when its cell is null or empty. Rows are
    duplicates when their `dedupe_by` cells would be written identically (so
    with the default null and empty outputs, a missing and an empty value are
    the same); the first row written wins. Only a 16-byte BLAKE2b digest of
    each distinct key is kept, as a Python int: about 80 MiB for a million
    distinct keys, whatever the size of the values. `required` is checked for
    the whole batch at once; `dedupe_by` looks each key up, a row at a time.
    """

    def __init__(
        self,
        headers: Sequence[str],
        fmt: ExportFormat,
        *,
        required: Sequence[str] = (),
        dedupe_by: Sequence[str] = (),
    ) -> None:
        self._required = [headers.index(header) for header in required]
        self._dedupe = [headers.index(header) for header in dedupe_by]
        self._null, self._empty = fmt.null_value, fmt.empty_value
        self._seen: set[int] = set()
        self.without_required = 0
        self.duplicates = 0

    def admit(self, row: Sequence[str | None]) -> bool:
        """Whether to write `row`; a row admitted claims its dedupe key."""
        for index in self._required:
            if not row[index]:
                self.without_required += 1
                return False
        if not self._dedupe:
            return True
        return self._claim(self._key([row[index] for index in self._dedupe]))

    def admit_table(self, cells: pa.Table) -> pa.Table:
        """The rows of `cells` to write, in order; admitted rows claim their dedupe keys."""
        return cells.filter(self.admit_mask(cells))

    def admit_mask(self, cells: pa.Table) -> pa.BooleanArray:
        """Which rows of `cells` to write (`admit_table`'s choice, as a mask over all rows)."""
        keep: pa.BooleanArray = pa.repeat(pa.scalar(value=True), cells.num_rows)
        if self._required:
            for index in self._required:
                keep = pc.and_(keep, pc.greater(pc.utf8_length(cells.column(index)), 0))
            keep = keep.fill_null(False)
            self.without_required += cells.num_rows - (pc.sum(keep).as_py() or 0)
        if not self._dedupe or cells.num_rows == 0:
            return keep
        kept = keep.to_pylist()
        columns = [cells.column(index).to_pylist() for index in self._dedupe]
        admitted = [
            bool(kept[row]) and self._claim(self._key([column[row] for column in columns]))
            for row in range(cells.num_rows)
        ]
        return pa.array(admitted, pa.bool_())

    def _claim(self, key: int) -> bool:
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(key)
        return True

    def _key(self, values: Sequence[str | None]) -> int:
        digest = hashlib.blake2b(digest_size=16)
        for value in values:
            text = self._null if value is None else (value or self._empty)
            data = text.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return int.from_bytes(digest.digest(), "little")
