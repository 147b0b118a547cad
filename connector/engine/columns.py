"""Export columns built for a whole Arrow batch of profiles at once.

`ExportColumns` turns a batch (`ProfileStore.profile_batches` layout) into
one text column per configured column, null where the profile has no value,
exactly the cells today's per-profile cell functions produced: profile id,
property values joined by the multi-value separator (numbers with the
export's decimal separator, dates and date-times in its format and zone),
`hash:` digests, static text, segment ids, group ids, permission level and
viewed interactions. What remains per value is Python work only where no
Arrow kernel writes the same text: SHA-256 and date formatting, each done
once per *distinct* value of the batch.

`RowRules` decides which built rows are written (`required`, `dedupe_by`).

Hashing (`hasher`): SHA-256 (lower-case hex of the UTF-8 bytes) of each
value after formatting: `sha256` hashes the text as it is; `email_lc_sha256`
trims and lower-cases it first; `phone_sha256` keeps only the digits and a
`+` written before the first digit (E.164 style: `+31 (0)6-1234 5678` ->
`+310612345678`; no country code or trunk prefix is guessed). Multi-values
are hashed one by one and joined; a value that normalises to nothing is left
out rather than hashed, because the digest of an empty text would match
every other empty value at the partner.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from connector.config.formats import ExportFormat
from connector.config.goal_parts import PROFILE_ID
from connector.config.segments import ALL_SEGMENT
from connector.engine.segments import has_values
from connector.exports.model import SEGMENT_STATUS, ColumnValue, ExportColumn, HashName
from connector.formats.writer import format_date

__all__ = [
    "COLUMN_VALUES",
    "EXITED",
    "PERMISSION_LEVEL",
    "REALIZED",
    "VIEWED_INTERACTIONS",
    "ExportColumns",
    "GroupsByType",
    "RowRules",
    "hasher",
]

REALIZED = "realized"
EXITED = "exited"
PERMISSION_LEVEL = "permission_level"
VIEWED_INTERACTIONS = "viewed_interactions"

GroupsByType = Mapping[str, Mapping[str, list[str]]]
"""{group type: {profile id: [group ids]}} for the profiles of one batch."""

_CANONICAL_NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?$"
_CANONICAL_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
Cells = Callable[["_Batch"], pa.StringArray]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _email(value: str) -> str:
    return value.strip().lower()


def _phone(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    digits = "".join(char for char in text if "0" <= char <= "9")
    if not digits:
        return ""
    plus = text.find("+")
    return "+" + digits if 0 <= plus < text.find(digits[0]) else digits


_NORMALISE: dict[HashName, Callable[[str], str]] = {
    "sha256": str,
    "email_lc_sha256": _email,
    "phone_sha256": _phone,
}


def hasher(name: HashName) -> Callable[[str], str | None]:
    """The `hash:` function: normalise, then SHA-256 as hex; None when nothing is left to hash."""
    normalise = _NORMALISE[name]

    def digest(value: str) -> str | None:
        text = normalise(value)
        return _sha256(text) if text else None

    return digest


class _Batch:
    """One batch as the cell builders see it: ids, property lists, segment masks, groups."""

    def __init__(
        self,
        ids: pa.StringArray,
        properties: Mapping[str, pa.ListArray],
        segments: Mapping[str, pa.BooleanArray],
        groups: GroupsByType,
        exited: pa.BooleanArray | None = None,
    ) -> None:
        self.ids = ids
        self.properties = properties
        self.segments = segments
        self.groups = groups
        self.exited = exited
        self.rows = len(ids)


class ExportColumns:
    """Headers, the properties to read, and the batch-wide cell builders of one export goal.

    Only profiles with a value in at least one `property:` column are
    written, as partners expect from a profile export: a row of nothing but
    ids and static text is noise. A goal with no `property:` column at all
    writes every selected profile, since the rule could never be met.

    `value: segments` lists the segments of segments.yaml the profile is in
    (the built-in `all` only when a column's `segments:` names it); the
    caller evaluates the segment masks only when `needs_segments` is true.
    """

    def __init__(self, columns: Sequence[ExportColumn], fmt: ExportFormat) -> None:
        self.headers = [column.header for column in columns]
        self.group_types = list(dict.fromkeys(c.group_type for c in columns if c.group_type))
        self.property_names = tuple(
            dict.fromkeys(column.property for column in columns if column.property is not None)
        )
        builtin = [c.value for c in columns if c.value in (PERMISSION_LEVEL, VIEWED_INTERACTIONS)]
        self.properties = tuple(dict.fromkeys([*self.property_names, *builtin]))
        """Every property the cells read, to ask the store for."""
        self.needs_segments = any(column.value == "segments" for column in columns)
        self._fmt = fmt
        self._separator = fmt.multi_value_separator
        self._columns = list(columns)
        self._cells = [self._compile(column) for column in columns]

    def has_property_value(self, properties: Mapping[str, pa.ListArray], rows: int) -> pa.Array:
        """Rows with a value in at least one `property:` column."""
        result: pa.Array = pa.repeat(pa.scalar(value=not self.property_names), rows)
        for name in self.property_names:
            result = pc.or_(result, has_values(properties[name]))
        return result

    def build(
        self,
        ids: pa.StringArray,
        properties: Mapping[str, pa.ListArray],
        segments: Mapping[str, pa.BooleanArray],
        groups: GroupsByType,
        exited: pa.BooleanArray | None = None,
    ) -> pa.Table:
        """The batch's cells: one nullable text column per configured column, in order.

        `exited` marks the profiles that left the segment (`segment_status` says
        `exited`); without it every row is a member (`realized`).
        """
        batch = _Batch(ids, properties, segments, groups, exited)
        arrays = [cell(batch) for cell in self._cells]
        return pa.Table.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])

    def build_deleted(self, ids: pa.StringArray) -> pa.Table:
        """Exit rows of deleted profiles: the id columns and `segment_status` only, since
        nothing else of them is left to write."""
        batch = _Batch(ids, {}, {}, {}, pa.repeat(pa.scalar(value=True), len(ids)))
        arrays = [
            cell(batch)
            if column.value in (PROFILE_ID, SEGMENT_STATUS)
            else pa.nulls(len(ids), pa.string())
            for column, cell in zip(self._columns, self._cells, strict=True)
        ]
        return pa.Table.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])

    def _compile(self, column: ExportColumn) -> Cells:
        if column.text is not None:
            text = column.text
            return lambda batch: _repeat(text, batch.rows)
        if column.property is not None:
            return self._property_cells(column.property, self._convert(column), column.hash)
        if column.value is not None:
            return COLUMN_VALUES[column.value](self, column)
        raise ValueError(f"column {column.header!r} has no source")

    def _id_cells(self, column: ExportColumn) -> Cells:
        if column.hash is not None:
            digest = hasher(column.hash)
            return lambda batch: _per_distinct(batch.ids, lambda v: digest(v) or "")
        return lambda batch: batch.ids

    def _stored_cells(self, column: ExportColumn) -> Cells:
        """A value the store keeps as a property of its own (permission level, interactions)."""
        return self._property_cells(column.value or "", None, None)

    def _convert(self, column: ExportColumn) -> Callable[[pa.StringArray], pa.StringArray] | None:
        fmt = self._fmt
        if column.type == "number" and fmt.decimal_separator != ".":
            decimal_separator = fmt.decimal_separator

            def number(values: pa.StringArray) -> pa.StringArray:
                canonical = pc.match_substring_regex(values, _CANONICAL_NUMBER)
                written = pc.replace_substring(values, ".", decimal_separator)
                result: pa.StringArray = pc.if_else(canonical, written, values)
                return result

            return number
        if column.type in ("date", "datetime"):
            date_format, timezone = fmt.date_format, fmt.timezone

            def convert(value: str) -> str:
                return format_date(value, date_format, timezone)

            def dates(values: pa.StringArray) -> pa.StringArray:
                if date_format != "iso8601":
                    return _per_distinct(values, convert)
                # a canonical date is written as it is stored (or left as it is when invalid)
                unchanged = pc.match_substring_regex(values, _CANONICAL_DATE)
                return _per_distinct(values, convert, skip=unchanged)

            return dates
        return None

    def _property_cells(
        self,
        name: str,
        convert: Callable[[pa.StringArray], pa.StringArray] | None,
        hash_name: HashName | None,
    ) -> Cells:
        """Each value formatted (then hashed), joined; no values is null, all hashed away is ""."""
        separator = self._separator
        digest = hasher(hash_name) if hash_name is not None else None

        def cells(batch: _Batch) -> pa.StringArray:
            lists = batch.properties[name]
            if convert is not None or digest is not None:
                values = _flat_values(lists)
                if convert is not None:
                    values = convert(values)
                if digest is not None:
                    values = _per_distinct(values, digest)
                lists = _with_values(lists, values)
            joined = pc.binary_join(lists, separator)
            result: pa.StringArray = pc.if_else(has_values(batch.properties[name]), joined, None)
            return result

        return cells

    def _segments_cells(self, column: ExportColumn) -> Cells:
        separator = self._separator
        only = column.segments

        def cells(batch: _Batch) -> pa.StringArray:
            wanted = list(batch.segments) if only is None else list(dict.fromkeys(only))
            # each member id with a separator after it, then the last separator cut off
            # (pyarrow 26's binary_join_element_wise with null_handling="skip" drops rows
            # whose inputs are all null, so nulls are avoided here)
            parts = [
                _repeat(segment_id + separator, batch.rows)
                if segment_id == ALL_SEGMENT
                else pc.if_else(batch.segments[segment_id], segment_id + separator, "")
                for segment_id in wanted
                if segment_id == ALL_SEGMENT or segment_id in batch.segments
            ]
            if not parts:
                return pa.nulls(batch.rows, pa.string())
            joined = pc.binary_join_element_wise(*parts, "")
            cut = pc.utf8_slice_codeunits(joined, 0, -1)
            result: pa.StringArray = pc.if_else(pc.equal(joined, ""), None, cut)
            return result

        return cells

    def _group_cells(self, column: ExportColumn) -> Cells:
        separator = self._separator
        group_type = column.group_type or ""

        def cells(batch: _Batch) -> pa.StringArray:
            members = batch.groups.get(group_type, {})
            texts = []
            for profile_id in batch.ids.to_pylist():
                ids = members.get(profile_id)
                texts.append(separator.join(ids) if ids else None)
            return pa.array(texts, pa.string())

        return cells


COLUMN_VALUES: dict[ColumnValue, Callable[[ExportColumns, ExportColumn], Cells]] = {
    "profile_id": ExportColumns._id_cells,
    "segments": ExportColumns._segments_cells,
    "groups": ExportColumns._group_cells,
    "permission_level": ExportColumns._stored_cells,
    "viewed_interactions": ExportColumns._stored_cells,
    "segment_status": lambda _columns, _column: _status_cells,
}
"""Each `value:` of an export column -> the builder of its cells for a whole batch.

Adding a value: its builder here, its name in `ColumnValue` (a test checks they agree)."""


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


def _status_cells(batch: _Batch) -> pa.StringArray:
    if batch.exited is None:
        return _repeat(REALIZED, batch.rows)
    result: pa.StringArray = pc.if_else(batch.exited, EXITED, REALIZED)
    return result


# -- helpers over Arrow arrays ----------------------------------------------------------------


def _repeat(text: str, rows: int) -> pa.StringArray:
    result: pa.StringArray = pa.repeat(pa.scalar(text, pa.string()), rows)
    return result


def _flat_values(lists: pa.ListArray) -> pa.StringArray:
    """The values under the lists' offsets, in order (those under null rows included)."""
    offsets = lists.offsets
    start = offsets[0].as_py()
    values: pa.StringArray = lists.values.slice(start, offsets[-1].as_py() - start)
    return values


def _with_values(lists: pa.ListArray, values: pa.StringArray) -> pa.ListArray:
    """`lists` holding `values` instead (same length), leaving out the null ones."""
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    if values.null_count:
        running = pc.cumulative_sum(pc.cast(values.is_valid(), pa.int32()))
        kept = pa.concat_arrays([pa.array([0], pa.int32()), running])
        offsets = pc.take(kept, offsets)
        values = values.drop_null()
    mask = lists.is_null() if lists.null_count else None
    result: pa.ListArray = pa.ListArray.from_arrays(offsets, values, mask=mask)
    return result


def _per_distinct(
    values: pa.StringArray,
    transform: Callable[[str], str | None],
    *,
    skip: pa.BooleanArray | None = None,
) -> pa.StringArray:
    """`transform` applied once per distinct value (values where `skip` holds stay as they are)."""
    if len(values) == 0:
        return values
    subject = values if skip is None else pc.filter(values, pc.invert(skip))
    if len(subject) == 0:
        return values
    encoded = pc.dictionary_encode(subject)
    done = pa.array([transform(v) for v in encoded.dictionary.to_pylist()], pa.string())
    result: pa.StringArray = pc.take(done, encoded.indices)
    if skip is not None:
        result = pc.replace_with_mask(values, pc.invert(skip), result)
    return result
