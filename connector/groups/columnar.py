"""Apply a piece of a group file set-based: convert, reject, merge properties, link members.

The columnar counterpart of `connector.groups.goal.GroupApplier`, with
the same groups, memberships, rejects and counts (tests/engine compare them).
Per piece: one lookup of the piece's groups, one of its member values, and a
handful of bulk writes, whatever the row count. Each piece does what the row
path does for one batch, in the same order: properties, then memberships
(`add`), or each group's latest row as its whole membership (`replace`).

Goals whose mappings write one property twice take the row path (a later
mapping sees the earlier one's value, row by row): see `why_not_columnar_groups`.
"""

from __future__ import annotations

import json
from io import BytesIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from connector.engine import piece_steps as steps
from connector.engine._cells import as_strings, pieces
from connector.engine.parse import Piece
from connector.engine.rows import CompiledMapping, RowPlan
from connector.engine.rules import LIST
from connector.formats.keys import stored_key_normalizer
from connector.groups._applier import UNMATCHED_EXAMPLES, GroupApplierBase
from connector.groups.model import ImportGroupsGoal
from connector.storage import RowReject
from connector.storage.batches import BatchTransaction

_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_OTHER_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def why_not_columnar_groups(plan: RowPlan) -> str | None:
    """Why this group goal and file need the row path, or None when the engine takes them."""
    targets = [mapping.property for mapping in plan.mappings]
    if len(set(targets)) != len(targets):
        return "two mappings write one property"
    return None


class GroupBatchApplier(GroupApplierBase[BatchTransaction]):
    """Applies pieces of one group file inside one `BatchTransaction`."""

    def __init__(
        self,
        tx: BatchTransaction,
        goal: ImportGroupsGoal,
        plan: RowPlan,
        *,
        file: str,
        member_normalize: str = "trim",
    ) -> None:
        super().__init__(tx, goal, file=file, member_normalize=member_normalize)
        self._plan = plan
        self._mappings: list[CompiledMapping] = list(plan.mappings)
        self._properties = [mapping.property for mapping in self._mappings]

    def close(self) -> None:
        """Nothing to release: a group file's statements run in the caller's thread."""

    # -- one piece ----------------------------------------------------------------------
    def convert(self, piece: Piece) -> steps.ConvertedPiece:
        """The piece converted; reads nothing stored, so it may run in another thread."""
        return steps.convert_piece(piece, self._plan, file=self._file)

    def apply(self, converted: steps.ConvertedPiece) -> list[RowReject]:
        """Apply the piece's good rows; return its rejects (parse problems included)."""
        piece = converted.piece
        return steps.apply_converted(
            converted, lambda rows, failed: self._apply_rows(piece, rows, failed)
        )

    def _apply_rows(self, piece: Piece, rows: steps.GoodRows, failed: steps.Failed) -> None:
        keys = steps.keyed(rows)
        distinct, key_of_row = keys.distinct, keys.key_of_row
        found = self._tx.load_groups(self._type, distinct)
        position = keys.positions(found.column("id").combine_chunks())
        exists = position >= 0
        stored = _decode_properties(found.column("properties"), self._properties)
        take = pa.array(position, mask=~exists)
        current = [pc.take(stored[name], take) for name in self._properties]
        alive = steps.refuse_sums_on_text(self._mappings, rows, key_of_row, current, failed)
        self.counts.rows_applied += int(alive.sum())
        merged = steps.merge(self._mappings, rows, keys, alive, current)
        created = merged.used & ~exists
        self.counts.groups_created += int(created.sum())
        self._touched.update(pc.filter(distinct, pa.array(merged.used)).to_pylist())
        save = np.flatnonzero(created | (exists & merged.touched & merged.used))
        if len(save):
            which = pa.array(save)
            patches = _patches(
                [pc.take(values, which) for values in merged.values], self._properties, len(save)
            )
            self._tx.save_groups(self._type, pc.take(distinct, which), patches)
        if self._plan.extra_index is not None:
            self._members(piece, rows.index[alive], key_of_row[alive], distinct)

    def _members(
        self,
        piece: Piece,
        rows: np.ndarray,
        row_keys: np.ndarray,
        distinct: pa.Array,
    ) -> None:
        """Link each applied row's member values that match a profile (in file order)."""
        assert self._plan.extra_index is not None  # noqa: S101 -- the caller checked
        column = pc.take(as_strings(piece.table.column(self._plan.extra_index)), pa.array(rows))
        found = pieces(as_strings(column), self._plan.separator)
        owner = found.rows.to_numpy()  # index into `rows`, ascending
        values = found.values
        if self._member_key is not stored_key_normalizer("trim") and len(values):
            dictionary = pc.dictionary_encode(values)
            written = [self._member_key(value) for value in dictionary.dictionary.to_pylist()]
            values = pc.take(pa.array(written, pa.string()), dictionary.indices)
        profile_of = self._tx.resolve_profiles(
            self._member_property, pc.unique(values) if len(values) else values
        )
        at = pc.index_in(values, value_set=profile_of.column("value").combine_chunks())
        profiles = pc.take(profile_of.column("id").combine_chunks(), at)
        matched = pc.is_valid(profiles).to_numpy(zero_copy_only=False)
        unmatched = np.flatnonzero(~matched)
        self.counts.members_unmatched += len(unmatched)
        room = UNMATCHED_EXAMPLES - len(self._unmatched_examples)
        if room > 0 and len(unmatched):
            lines = piece.lines().to_numpy()
            self._unmatched_examples += [
                f"line {int(lines[rows[owner[entry]]])}: {values[int(entry)].as_py()}"
                for entry in unmatched[:room].tolist()
            ]
        member_groups = pc.take(distinct, pa.array(row_keys[owner[matched]]))
        members = pc.filter(profiles, pa.array(matched))
        if not self._replace:
            self._tx.add_members(self._type, member_groups, members)
            return
        self._replace_members(row_keys, distinct, owner, matched, members)

    def _replace_members(
        self,
        row_keys: np.ndarray,
        distinct: pa.Array,
        owner: np.ndarray,
        matched: np.ndarray,
        members: pa.Array,
    ) -> None:
        """`members_mode: replace`: each group's latest row is its whole membership; a latest
        row with no member value removes the group (one whose values all match none does not)."""
        latest = np.full(len(distinct), -1, dtype=np.int64)
        latest[row_keys] = np.arange(len(row_keys))  # numpy assigns in order: the last row stays
        groups = np.flatnonzero(latest >= 0)
        has_values = np.zeros(len(row_keys), dtype=bool)
        has_values[owner] = True
        emptied = groups[~has_values[latest[groups]]]
        kept = groups[has_values[latest[groups]]]
        entry_row = owner[matched]
        of_latest = latest[row_keys[entry_row]] == entry_row
        if len(kept):
            _joined, left = self._tx.replace_members(
                self._type,
                pc.take(distinct, pa.array(kept)),
                pc.take(distinct, pa.array(row_keys[entry_row[of_latest]])),
                pc.filter(members, pa.array(of_latest)),
            )
            self.counts.members_removed += left
        if len(emptied):
            deleted, left = self._tx.delete_groups(self._type, pc.take(distinct, pa.array(emptied)))
            self.counts.groups_deleted += deleted
            self.counts.members_removed += left


def _decode_properties(documents: pa.ChunkedArray, names: list[str]) -> dict[str, pa.Array]:
    """The stored JSON objects as one `list<string>` column per property (null: absent)."""
    if not names:
        return {}
    texts = as_strings(documents)
    if not len(texts):
        return {name: pa.array([], LIST) for name in names}
    data = "\n".join(texts.to_pylist()).encode()
    schema = pa.schema([pa.field(name, LIST) for name in dict.fromkeys(names)])
    try:
        parsed = pajson.read_json(
            BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
        return {name: parsed.column(name).combine_chunks() for name in names}
    except pa.ArrowInvalid:  # a document connector did not write: read it the slow way
        loaded = [json.loads(text) for text in texts.to_pylist()]
        return {name: pa.array([doc.get(name) for doc in loaded], LIST) for name in names}


def _patches(merged: list[pa.Array], names: list[str], count: int) -> pa.Array:
    """One JSON object per group with its non-null properties, built natively."""
    if not merged:
        return pa.array(["{}"] * count, pa.string())
    # each present property with a comma after it, the last comma cut off (nulls avoided:
    # pyarrow's null_handling="skip" drops rows whose inputs are all null)
    members = [
        pc.fill_null(
            pc.binary_join_element_wise(json.dumps(name) + ":", _json_arrays(values), ",", ""),
            "",
        )
        for name, values in zip(names, merged, strict=True)
    ]
    joined = pc.binary_join_element_wise(*members, "")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 0, -1), "}", "")


def _json_arrays(values: pa.Array) -> pa.Array:
    """Each `list<string>` as JSON array text; null stays null."""
    flat = pc.list_flatten(values)
    if len(flat) and pc.any(pc.match_substring_regex(flat, _OTHER_CONTROL)).as_py():
        return pa.array(
            [None if item is None else json.dumps(item) for item in values.to_pylist()],
            pa.string(),
        )
    for old, new in _ESCAPES:
        flat = pc.replace_substring(flat, old, new)
    quoted = pc.binary_join_element_wise('"', flat, '"', "")
    lengths = pc.fill_null(pc.list_value_length(values), 0)
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cast(pc.cumulative_sum(lengths), pa.int32())]
    )
    lists = pa.ListArray.from_arrays(offsets, quoted, mask=pc.is_null(values))
    inner = pc.binary_join(lists, ",")
    return pc.binary_join_element_wise("[", inner, "]", "")
