"""The four mapping rules over whole batches: per-key results and what they changed.

Each function takes, for one mapping, the batch's rows in file order
(`keys`: the row's index into the batch's distinct keys; `cells`: the row's
values as `list<string>`, null when the cell gave nothing) and the profiles'
`current` values (one list per distinct key, null when absent), and returns
the values each key ends with and whether applying the rows one after the
other would have changed the profile (`touched`): exactly what
`connector.engine.value_rules` gives when called row by row, without a Python call per row.

- set: the last present cell wins; touched when any cell differs from the value
  before it (A -> B -> A touches).
- set_if_empty: the first present cell, only where the profile has no value.
- add: the current values, then each new value not seen yet, in file order.
- sum: exact decimal arithmetic in `decimal128(38, s)`, each key keeping the
  largest scale it saw; stored values that are not canonical numbers, and sums
  too large for 38 digits, take the exact per-key path of `connector.engine.value_rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector.engine.value_rules import sum_values
from connector.storage._text_bytes import one_value_where_present
from connector.storage.columns import VALUE_SEPARATOR

LIST = pa.list_(pa.string())
_CANONICAL_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"
_MAX_DIGITS = 38
_ROW_DIGITS = 7
"""Headroom for the integer digits a sum of up to 10 million values can add."""


@dataclass(frozen=True, slots=True)
class RuleResult:
    values: pa.Array
    """One `list<string>` per distinct key: the values it ends with."""
    touched: np.ndarray
    """One bool per distinct key: whether the rows changed the profile."""


def _present(keys: np.ndarray, cells: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in file order) of the rows that have a cell, and their keys."""
    rows = np.flatnonzero(pc.is_valid(cells).to_numpy(zero_copy_only=False))
    return rows, keys[rows]


def _per_key(rows: np.ndarray, row_keys: np.ndarray, n_keys: int, *, last: bool) -> np.ndarray:
    """For each key, the first (or last) of `rows` it has; -1 where it has none."""
    pick = np.full(n_keys, -1, dtype=np.int64)
    if last:
        pick[row_keys] = rows  # numpy assigns in order: the last row of a key stays
    else:
        pick[row_keys[::-1]] = rows[::-1]
    return pick


def _take(cells: pa.Array, positions: np.ndarray) -> pa.Array:
    return pc.take(cells, pa.array(positions, mask=positions < 0))


def _joined(values: pa.Array) -> pa.Array:
    return pc.binary_join(values, VALUE_SEPARATOR)


def _one_row_each(keys: np.ndarray, n_keys: int) -> bool:
    """Whether no key has two of these rows."""
    return len(keys) == 0 or bool(np.bincount(keys, minlength=n_keys).max() <= 1)


def _group_any(flags: np.ndarray, row_keys: np.ndarray, n_keys: int) -> np.ndarray:
    return np.bincount(row_keys, weights=flags, minlength=n_keys) > 0


def _over_nothing(keys: np.ndarray, cells: pa.Array, current: pa.Array) -> RuleResult | None:
    """The result of `set`, `set_if_empty` or a one-value `sum` when no key has a stored
    value and each row is its own key, in key order (a fresh file's piece of new
    profiles): the cells themselves, touched where present; None otherwise.

    A key's only cell replaces nothing and `0 + x` is `x` (`sum_values`), so the rules
    need neither a pick per key nor a merge with the stored values: on a fresh import
    those took a third of the thread that applies the rules (py-spy), its critical path.
    """
    n_keys = len(current)
    if current.null_count != n_keys or len(keys) != n_keys:
        return None
    if not np.array_equal(keys, np.arange(n_keys)):
        return None
    return RuleResult(cells, pc.is_valid(cells).to_numpy(zero_copy_only=False))


def apply_set(keys: np.ndarray, cells: pa.Array, current: pa.Array) -> RuleResult:
    if (fresh := _over_nothing(keys, cells, current)) is not None:
        return fresh
    n_keys = len(current)
    rows, row_keys = _present(keys, cells)
    chosen = _take(cells, _per_key(rows, row_keys, n_keys, last=True))
    if len(rows) == 0:
        return RuleResult(pc.if_else(pc.is_valid(chosen), chosen, current), np.zeros(n_keys, bool))
    if current.null_count == n_keys:
        # nothing stored (new profiles; a property no profile has yet): a key's first row
        # replaces no value, so every key with a row changes; no need to compare the rows
        return RuleResult(chosen, np.bincount(row_keys, minlength=n_keys) > 0)
    values = pc.if_else(pc.is_valid(chosen), chosen, current)
    if _one_row_each(keys, n_keys):
        # a row a key (most files): each present cell replaces the stored value itself
        present = pc.is_valid(chosen).to_numpy(zero_copy_only=False)
        return RuleResult(values, present & _differ(_joined(chosen), _joined(current)))
    order = np.argsort(row_keys, kind="stable")  # rows of one key together, in file order
    sorted_keys = row_keys[order]
    text = _joined(pc.take(cells, pa.array(rows[order])))
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    # what each row replaces: the stored value for a key's first row, else the row before
    # (compared in Arrow: numpy object arrays would make a Python str per cell)
    replaced = np.where(first, sorted_keys, n_keys + np.arange(len(order)) - 1)
    before = pc.take(pa.concat_arrays([_joined(current), text]), pa.array(replaced))
    flags = _differ(text, before)
    return RuleResult(values, _group_any(flags, sorted_keys, n_keys))


def _differ(text: pa.Array, before: pa.Array) -> np.ndarray:
    """Whether each text differs from the one before it (null: no value; two nulls agree)."""
    both_null = pc.and_(pc.is_null(text), pc.is_null(before))
    changed = pc.and_not(pc.fill_null(pc.not_equal(text, before), True), both_null)
    flags: np.ndarray = changed.to_numpy(zero_copy_only=False)
    return flags


def apply_set_if_empty(keys: np.ndarray, cells: pa.Array, current: pa.Array) -> RuleResult:
    if (fresh := _over_nothing(keys, cells, current)) is not None:
        return fresh
    n_keys = len(current)
    rows, row_keys = _present(keys, cells)
    chosen = _take(cells, _per_key(rows, row_keys, n_keys, last=False))
    empty = pc.is_null(current)
    values = pc.if_else(empty, chosen, current)
    touched = pc.and_(empty, pc.is_valid(chosen)).to_numpy(zero_copy_only=False)
    return RuleResult(values, touched)


def _lists(owner: np.ndarray, values: pa.Array, n_keys: int) -> pa.Array:
    """Values already sorted by owner key -> one list per key (null for keys with none)."""
    counts = np.bincount(owner, minlength=n_keys)
    offsets = np.zeros(n_keys + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), values, type=LIST, mask=pa.array(counts == 0)
    )


def apply_add(keys: np.ndarray, cells: pa.Array, current: pa.Array) -> RuleResult:
    n_keys = len(current)
    flat = pc.list_flatten(cells)
    if len(flat) == 0:
        return RuleResult(current, np.zeros(n_keys, dtype=bool))
    new_owner = keys[pc.list_parent_indices(cells).to_numpy()]
    new = pa.table({"k": new_owner, "v": flat, "o": np.arange(len(flat), dtype=np.int64)})
    stored = pa.table(
        {
            "k": pc.list_parent_indices(current).to_numpy().astype(new_owner.dtype),
            "v": pc.list_flatten(current),
        }
    )
    if stored.num_rows:
        new = new.join(stored, keys=["k", "v"], join_type="left anti", use_threads=False)
    fresh = new.group_by(["k", "v"], use_threads=False).aggregate([("o", "min")])
    touched = np.zeros(n_keys, dtype=bool)
    touched[fresh.column("k").to_numpy()] = True
    base = -len(stored) - 1
    combined = pa.concat_tables(
        [
            stored.append_column("o", pa.array(np.arange(base, base + len(stored)))).select(
                ["k", "v", "o"]
            ),
            fresh.rename_columns(["k", "v", "o"]).select(["k", "v", "o"]),
        ]
    ).sort_by([("k", "ascending"), ("o", "ascending")])
    values = _lists(combined.column("k").to_numpy(), combined.column("v").combine_chunks(), n_keys)
    return RuleResult(pc.if_else(pa.array(touched), values, current), touched)


def apply_sum(keys: np.ndarray, cells: pa.Array, current: pa.Array) -> RuleResult:
    # a sum adds up the numbers of a cell: the cell is the result only when it holds one
    fresh = _over_nothing(keys, cells, current) if one_value_where_present(cells) else None
    if fresh is not None:
        return fresh
    n_keys = len(current)
    rows, row_keys = _present(keys, cells)
    if len(rows) == 0:
        return RuleResult(current, np.zeros(n_keys, dtype=bool))
    incoming = _array(pc.list_element(pc.take(cells, pa.array(rows)), 0))
    stored = _array(pc.list_element(current, 0))
    if _native_sum_fits(incoming, stored):
        totals = _native_sum(row_keys, incoming, stored, n_keys)
    else:
        totals = _exact_sum(row_keys, incoming, current, n_keys)
    has_rows = np.bincount(row_keys, minlength=n_keys) > 0
    values = pa.ListArray.from_arrays(
        pa.array(np.arange(n_keys + 1, dtype=np.int32)),
        totals,
        type=LIST,
        mask=pa.array(~has_rows),
    )
    values = pc.if_else(pa.array(has_rows), values, current)
    nonzero = pc.not_equal(pc.utf8_trim(incoming, "-0."), "").to_numpy(zero_copy_only=False)
    differs = pc.fill_null(pc.not_equal(_joined(values), _joined(current)), True).to_numpy(
        zero_copy_only=False
    )
    touched = has_rows & (_group_any(nonzero, row_keys, n_keys) | differs)
    return RuleResult(values, touched)


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _scale(numbers: pa.Array) -> np.ndarray:
    dot = pc.find_substring(numbers, ".").to_numpy(zero_copy_only=False)
    length = pc.utf8_length(numbers).to_numpy(zero_copy_only=False)
    scale: np.ndarray = np.where(dot >= 0, length - dot - 1, 0)
    return scale


def _int_digits(numbers: pa.Array) -> np.ndarray:
    dot = pc.find_substring(numbers, ".").to_numpy(zero_copy_only=False)
    length = pc.utf8_length(numbers).to_numpy(zero_copy_only=False)
    digits: np.ndarray = np.where(dot >= 0, dot, length)
    return digits


def _native_sum_fits(incoming: pa.Array, stored: pa.Array) -> bool:
    """Whether decimal128 holds every operand and any total exactly (else the exact path)."""
    stored = stored.drop_null()
    if not pc.all(pc.match_substring_regex(stored, _CANONICAL_NUMBER)).as_py() and len(stored):
        return False
    numbers = pa.concat_arrays([incoming, stored])
    scale = int(_scale(numbers).max())
    digits = int(_int_digits(numbers).max())
    return digits + _ROW_DIGITS + scale <= _MAX_DIGITS - 2


def _native_sum(
    row_keys: np.ndarray, incoming: pa.Array, stored: pa.Array, n_keys: int
) -> pa.Array:
    scales = _scale(incoming)
    stored_scale = np.where(
        pc.is_valid(stored).to_numpy(zero_copy_only=False),
        _scale(pc.fill_null(stored, "0")),
        0,
    )
    scale = int(max(scales.max(), stored_scale.max()))
    kind = pa.decimal128(_MAX_DIGITS - 2, scale)
    total_kind = pa.decimal128(_MAX_DIGITS - 1, scale)
    key_scale = stored_scale.astype(np.int64)
    position = np.full(n_keys, -1, dtype=np.int64)
    if _one_row_each(row_keys, n_keys):
        # a row a key (most files): nothing to add up within the piece
        sums = pc.cast(incoming, kind)
        position[row_keys] = np.arange(len(row_keys))
        key_scale[row_keys] = np.maximum(key_scale[row_keys], scales)
    else:
        grouped = (
            pa.table({"k": row_keys, "v": pc.cast(incoming, kind)})
            .group_by("k", use_threads=False)
            .aggregate([("v", "sum")])
        )
        sums = grouped.column("v_sum")
        position[grouped.column("k").to_numpy()] = np.arange(grouped.num_rows)
        np.maximum.at(key_scale, row_keys, scales)
    summed = pc.take(sums, pa.array(position, mask=position < 0))
    summed = pc.add_checked(
        pc.cast(pc.fill_null(summed, pa.scalar(0, kind)), total_kind),
        pc.cast(pc.fill_null(stored, "0"), total_kind),
    )
    text = pa.nulls(n_keys, pa.string())
    for each in np.unique(key_scale):
        shown = pc.cast(
            pc.cast(summed, pa.decimal128(_MAX_DIGITS, int(each)), safe=False), pa.string()
        )
        text = pc.if_else(pa.array(key_scale == each), shown, text)
    return _array(text)


def _exact_sum(
    row_keys: np.ndarray, incoming: pa.Array, current: pa.Array, n_keys: int
) -> pa.Array:
    """Per key with Python's exact decimals (rare: odd stored values, 30+ digit sums)."""
    values = incoming.to_pylist()
    stored = current.to_pylist()
    running: dict[int, list[str]] = {}
    for key, value in zip(row_keys.tolist(), values, strict=True):
        before = running.get(key, stored[key] or [])
        running[key] = sum_values(before, [value])
    return pa.array(
        [running[key][0] if key in running else None for key in range(n_keys)], pa.string()
    )


Rule = Callable[[np.ndarray, pa.Array, pa.Array], RuleResult]


def _whole(rule: Rule) -> Rule:
    """The rule over plain arrays: chunked inputs are combined once, here."""

    def apply(keys: np.ndarray, cells: pa.Array, current: pa.Array) -> RuleResult:
        return rule(keys, _array(cells), _array(current))

    apply.__doc__ = rule.__doc__
    return apply


BATCH_RULES: dict[str, Rule] = {
    "set": _whole(apply_set),
    "set_if_empty": _whole(apply_set_if_empty),
    "add": _whole(apply_add),
    "sum": _whole(apply_sum),
}
