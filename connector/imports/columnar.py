"""Apply a piece of a file to profiles, set-based: convert, reject, resolve, merge, write.

The columnar counterpart of `connector.imports.apply_rows.ProfileApplier`,
with the same results (profiles, rejects and counts: the property-based
tests in tests/engine compare them). Per piece it makes a few Arrow passes
per mapping and a handful of store statements, whatever the row count.

Goals that need row-by-row decisions take the row path instead (see
`why_not_columnar`): consent objectives (whether a row applies depends on
the profile as the previous row left it), a delete column (a deletion
between two rows of one key), mappings to unique properties (a value freed
or taken by an earlier row), and two mappings writing one property.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.config.goal_parts import PROFILE_ID
from connector.engine import piece_steps as steps
from connector.engine.ids import new_profile_ids
from connector.engine.parse import Piece
from connector.engine.rows import CompiledMapping, RowPlan
from connector.engine.rules import LIST
from connector.imports._store_queue import StoreQueue
from connector.imports.model import ImportProfilesGoal
from connector.storage import RowReject, RunCounts
from connector.storage.batches import BatchTransaction

Column: TypeAlias = pa.Array | pa.ChunkedArray
"""An Arrow column as a lookup or a rule gives it: one array, or chunks of one."""


def why_not_columnar(
    goal: ImportProfilesGoal,
    plan: RowPlan,
    *,
    objectives: Collection[str],
    unique_properties: Collection[str],
) -> str | None:
    """Why this goal and file need the row path, or None when the engine can take them."""
    if objectives:
        return "the connection has consent objectives"
    if goal.delete_column:
        return "the goal has a delete column"
    if goal.on_change == "replace":
        return "on_change: replace records each file's contribution row by row"
    taken = set(unique_properties) | {goal.match.property}
    targets = [mapping.property for mapping in plan.mappings]
    if taken & set(targets):
        return "a mapping writes a unique property"
    if len(set(targets)) != len(targets):
        return "two mappings write one property"
    return None


class ProfileBatchApplier:
    """Applies pieces of one file inside one `BatchTransaction`.

    Where the store's writes hold no GIL (`writes_release_the_gil`: SQLite
    through `_arrow_bind`, PostgreSQL waiting for its server), a piece's
    writes (its new profiles, its changed ones) run on a thread of their own
    (`StoreQueue`) while the next piece's rules run here, so on two cores the
    two overlap. Their bytes are built here first (`encoded_insert`,
    `encoded_update`): the writes' thread only sends them. For that, the
    next piece's key lookup is queued before the last piece's writes, and
    `_pending` (what the last piece leaves each of its keys) stands in for
    the store's answer for those keys: every piece sees the profiles exactly
    as the pieces before it left them. Elsewhere (SQLite without the native
    binding, whose every row takes the GIL) a piece's writes run when its
    rules end, before the next lookup. Call `finish()` at the end of the
    file and `close()` in every case, before the transaction ends.
    """

    def __init__(
        self, tx: BatchTransaction, goal: ImportProfilesGoal, plan: RowPlan, *, file: str
    ) -> None:
        self._tx = tx
        self._file = file
        self._plan = plan
        self._mappings: list[CompiledMapping] = list(plan.mappings)
        self._match = goal.match.property
        self._normalize = goal.match.normalize
        self._create = goal.match.create_missing
        self._properties = [mapping.property for mapping in self._mappings]
        stored = [] if self._match == PROFILE_ID else [self._match]
        tx.prepare([*stored, *self._properties])
        self.counts = RunCounts()
        self._store = StoreQueue(background=tx.writes_release_the_gil)
        self._writes: list[Callable[[], None]] = []
        """The last piece's writes, queued after the next piece's lookup."""
        self._pending: _LastPiece | None = None
        """The last piece's keys as its writes leave them, read back on demand."""
        self._updates = 0
        """Update batches queued: none, and the file's profiles are exactly the new ones."""

    def finish(self) -> tuple[RunCounts, int]:
        self._queue_writes()
        self._store.drain()
        if self._updates:
            seq, touched = self._tx.changed_profiles()
        else:
            # only new profiles were written, each once: the store need not count them
            # (on PostgreSQL, a count over a fresh file's 1M profiles took 0.4 s)
            seq, touched = self._tx.change_sequence(), self.counts.profiles_created
        self.counts.profiles_updated = touched - self.counts.profiles_created
        return self.counts, seq

    def close(self) -> None:
        """Stop the writes' thread (after the statement in progress): call before the
        transaction ends, so that nothing else uses its connection."""
        self._store.close()

    # -- one piece ----------------------------------------------------------------
    def convert(self, piece: Piece) -> steps.ConvertedPiece:
        """The piece converted; reads nothing stored, so it may run in another thread."""
        return steps.convert_piece(piece, self._plan, file=self._file, normalize=self._normalize)

    def apply(self, converted: steps.ConvertedPiece) -> list[RowReject]:
        """Apply the piece's good rows (their writes queued); return its rejects (parse
        problems included)."""
        self._store.check()
        return steps.apply_converted(converted, self._apply_rows)

    def _apply_rows(self, rows: steps.GoodRows, failed: steps.Failed) -> None:
        keys = steps.keyed(rows)
        found = self._lookup(keys.distinct)
        position = keys.positions(found.column("key"))
        exists = position >= 0
        # stored values by place (`key`, `id`, then the properties): a property may be named
        # like the store's own last column (see `BatchTransaction.lookup`)
        current = [
            _stored_per_key(found.column(2 + index), position, exists)
            for index in range(len(self._properties))
        ]
        alive = steps.refuse_sums_on_text(self._mappings, rows, keys.key_of_row, current, failed)
        missing = ~exists
        if not self._create:
            skipped = alive & missing[keys.key_of_row]
            self.counts.rows_skipped += int(skipped.sum())
            alive &= ~skipped
        self.counts.rows_applied += int(alive.sum())
        merged = steps.merge(self._mappings, rows, keys, alive, current)
        new = missing & merged.used
        ids = _stored_per_key(found.column("id"), position, exists)
        ids = self._insert(keys.distinct, merged.values, new, ids)
        self._update(found, position, merged.values, exists & merged.touched)
        if not self._store.background:
            self._queue_writes()  # they run now: the next lookup reads what they wrote
            return
        self._pending = _LastPiece(
            keys.distinct,
            ids,
            current,
            merged.values,
            kept=exists | new,
            unchanged=exists & ~merged.touched,
        )

    def _lookup(self, distinct: pa.Array) -> pa.Table:
        """The stored profiles of these keys, as the pieces before this one leave them."""
        asked = self._store.ask(lambda: self._tx.lookup(self._match, distinct, self._properties))
        self._queue_writes()  # they run while this piece's rules do
        found = self._store.answer(asked)
        if self._pending is None:
            return found
        # read before the last piece's writes: the keys it kept are taken from `_pending`
        fresh = self._pending.read_back(distinct, found.schema)
        if fresh.num_rows == 0:
            return found
        stale = pc.is_in(found.column("key"), value_set=fresh.column("key"))
        return pa.concat_tables([found.filter(pc.invert(stale)), fresh])

    def _queue_writes(self) -> None:
        for write in self._writes:
            self._store.write(write)
        self._writes = []

    def _insert(
        self, distinct: pa.Array, merged: list[pa.Array], new: np.ndarray, ids: pa.Array
    ) -> pa.Array:
        """Queue the new profiles' insert; `ids` (per key) with the new profiles' ids."""
        count = int(new.sum())
        if not count:
            return ids
        self.counts.profiles_created += count
        which = np.flatnonzero(new)
        keys = _take(distinct, which)
        columns = {"key": keys}
        if self._match == PROFILE_ID:
            columns["id"] = keys
            identifier = None
        else:
            columns["id"] = new_profile_ids(count)
            columns[self._match] = pa.ListArray.from_arrays(
                pa.array(np.arange(count + 1, dtype=np.int32)), keys, type=LIST
            )
            identifier = self._match
        for name, values in zip(self._properties, merged, strict=True):
            columns[name] = _take(values, which)
        table = pa.table(columns)
        self._writes.append(self._tx.encoded_insert(table, identifier=identifier))
        return pc.replace_with_mask(ids, pa.array(new), columns["id"])

    def _update(
        self, found: pa.Table, position: np.ndarray, merged: list[pa.Array], changed: np.ndarray
    ) -> None:
        if not changed.any():
            return
        which = np.flatnonzero(changed)
        stored_rows = position[which]
        columns = {"id": _take(found.column("id"), stored_rows)}
        for index, (name, values) in enumerate(zip(self._properties, merged, strict=True)):
            new = _take(values, which)
            # a property no changed profile changes is not written: a file imported again
            # mostly repeats what is stored, and each column bound costs a Python object
            # per row in the store's write (the changed profiles are stamped all the same)
            stored = found.column(2 + index)
            if not _chunked(new).equals(_chunked(_take(stored, stored_rows))):
                columns[name] = new
        table = pa.table(columns)
        self._updates += 1
        places = None  # where the store finds each profile, if its lookup said (see lookup)
        if found.num_columns > 2 + len(self._properties):
            places = _take(found.column(found.num_columns - 1), stored_rows)
        self._writes.append(self._tx.encoded_update(table, places))


def _take(values: Column, rows: np.ndarray) -> Column:
    """`pc.take(values, rows)`, without the copy when `rows` are every row in order: the
    usual piece (all of its keys new, or all found in the order they were asked for)."""
    if len(rows) == len(values) and np.array_equal(rows, np.arange(len(rows))):
        return values
    return pc.take(values, pa.array(rows))


def _stored_per_key(stored: Column, position: np.ndarray, exists: np.ndarray) -> Column:
    """A looked-up column per distinct key (`position` in `stored`, -1: none stored)."""
    if not exists.any():
        return pa.nulls(len(position), stored.type)
    if exists.all():
        return _take(stored, position)
    return pc.take(stored, pa.array(position, mask=~exists))


def _chunked(values: Column) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


class _LastPiece:
    """A piece's keys as its writes leave them, for the next piece's lookup, which is read
    before those writes run.

    Built per piece but read back only for the keys the next piece also has
    (usually none): building all of them cost a fresh import a tenth of its
    rules' time.
    """

    def __init__(
        self,
        keys: pa.Array,
        ids: pa.Array,
        stored: list[pa.Array],
        merged: list[pa.Array],
        *,
        kept: np.ndarray,
        unchanged: np.ndarray,
    ) -> None:
        self._keys = keys
        self._ids = ids
        self._stored = stored
        self._merged = merged
        self._kept = kept
        """Keys with a profile once written: the stored ones and the new ones."""
        self._unchanged = unchanged
        """Stored keys the piece did not change: they read back as stored."""

    def read_back(self, keys: pa.Array, schema: pa.Schema) -> pa.Table:
        """Those of `keys` this piece kept, as a lookup (`schema`) reads them once written:
        an empty list reads back as no value (null), on both stores."""
        asked = pc.fill_null(pc.is_in(self._keys, value_set=keys), False).to_numpy(
            zero_copy_only=False
        )
        rows = np.flatnonzero(asked & self._kept)
        if not len(rows):
            return schema.empty_table()
        take = pa.array(rows)
        unchanged = pa.array(self._unchanged[rows])
        columns = [pc.take(self._keys, take), pc.take(self._ids, take)]
        for stored, merged in zip(self._stored, self._merged, strict=True):
            column = pc.if_else(unchanged, pc.take(stored, take), pc.take(merged, take))
            empty = pc.equal(pc.list_value_length(column), 0)
            columns.append(pc.if_else(empty, pa.scalar(None, column.type), column))
        # the store's own last column, if it adds one (a profile's place): not known here
        columns += [pa.nulls(len(rows), field.type) for field in list(schema)[len(columns) :]]
        return pa.Table.from_arrays(columns, names=schema.names).cast(schema)
