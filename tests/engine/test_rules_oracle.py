"""The batch rules give, key for key, what `connector.engine.value_rules` gives applied row by row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.engine.rules import BATCH_RULES
from connector.engine.value_rules import RULES

LIST = pa.list_(pa.string())
TEXTS = st.sampled_from(["a", "b", "c", "", "Ω", "a b"])
NUMBERS = st.sampled_from(
    ["0", "1", "2.5", "-2.5", "0.00", "10", "-0.5", "3.125", "99999999999999999999"]
)
STORED_NUMBERS = st.sampled_from(["7", "1.5", "-3", "+4", " 5 ", "", "0.0", "123.4500"])
CANONICAL = st.sampled_from(["7", "1.5", "-3", "0.0"])


def row_by_row(
    rule: str, keys: list[int], cells: list[list[str] | None], current: list[list[str] | None]
) -> tuple[list[list[str] | None], list[bool]]:
    values: list[list[str] | None] = []
    touched: list[bool] = []
    for key, stored in enumerate(current):
        running = stored or []
        changed = False
        for owner, cell in zip(keys, cells, strict=True):
            if owner != key or cell is None:
                continue
            after = RULES[rule](running, cell)
            changed |= after != running
            running = after
        values.append(running or None)
        touched.append(changed)
    return values, touched


def check(
    rule: str, keys: list[int], cells: list[list[str] | None], current: list[list[str] | None]
) -> None:
    result = BATCH_RULES[rule](
        np.array(keys, dtype=np.int64), pa.array(cells, LIST), pa.array(current, LIST)
    )
    expected_values, expected_touched = row_by_row(rule, keys, cells, current)
    assert result.values.to_pylist() == expected_values
    assert result.touched.tolist() == expected_touched


@st.composite
def batches(
    draw: st.DrawFn, values: st.SearchStrategy[str], *, multi: bool, stored: st.SearchStrategy[str]
) -> tuple[list[int], list[list[str] | None], list[list[str] | None]]:
    n_keys = draw(st.integers(1, 5))
    rows = draw(st.integers(0, 12))
    keys = [draw(st.integers(0, n_keys - 1)) for _ in range(rows)]
    size = st.integers(1, 3) if multi else st.just(1)
    cells = [
        draw(st.none() | st.lists(values, min_size=1, max_size=draw(size))) for _ in range(rows)
    ]
    current = [
        draw(st.none() | st.lists(stored, min_size=1, max_size=3 if multi else 1))
        for _ in range(n_keys)
    ]
    return keys, cells, current


@st.composite
def one_row_a_key(
    draw: st.DrawFn, values: st.SearchStrategy[str], *, stored: st.SearchStrategy[str]
) -> tuple[list[int], list[list[str] | None], list[list[str] | None]]:
    """Most files: every key once, in any order (the rules take a shorter path for them)."""
    n_keys = draw(st.integers(1, 8))
    keys = draw(st.permutations(range(n_keys)))
    cells = [draw(st.none() | st.lists(values, min_size=1, max_size=1)) for _ in keys]
    current = [draw(st.none() | st.lists(stored, min_size=1, max_size=1)) for _ in keys]
    return list(keys), cells, current


@st.composite
def new_profiles(
    draw: st.DrawFn, values: st.SearchStrategy[str], *, multi: bool
) -> tuple[list[int], list[list[str] | None], list[list[str] | None]]:
    """A fresh file's piece: every key once, in key order, nothing stored (the rules return
    the cells themselves)."""
    n_keys = draw(st.integers(1, 8))
    size = 3 if multi else 1
    cells = [draw(st.none() | st.lists(values, min_size=1, max_size=size)) for _ in range(n_keys)]
    return list(range(n_keys)), cells, [None] * n_keys


@settings(max_examples=400, deadline=None)
@given(
    batch=batches(TEXTS, multi=True, stored=TEXTS)
    | one_row_a_key(TEXTS, stored=TEXTS)
    | new_profiles(TEXTS, multi=True),
    rule=st.sampled_from(["set", "set_if_empty", "add"]),
)
def test_text_rules_match_the_row_by_row_rules(
    batch: tuple[list[int], list[list[str] | None], list[list[str] | None]], rule: str
) -> None:
    check(rule, *batch)


@settings(max_examples=300, deadline=None)
@given(batch=batches(NUMBERS, multi=False, stored=STORED_NUMBERS))
def test_sums_are_exact_and_keep_the_largest_scale(
    batch: tuple[list[int], list[list[str] | None], list[list[str] | None]],
) -> None:
    check("sum", *batch)


@settings(max_examples=200, deadline=None)
@given(
    batch=batches(NUMBERS, multi=False, stored=CANONICAL)
    | one_row_a_key(NUMBERS, stored=CANONICAL | st.just("-0"))
    | new_profiles(NUMBERS, multi=False)
)
def test_sums_over_canonical_stored_values_take_the_native_path(
    batch: tuple[list[int], list[list[str] | None], list[list[str] | None]],
) -> None:
    check("sum", *batch)


def test_a_sum_over_nothing_stored_adds_up_each_cells_values() -> None:
    """A cell of several numbers is added up even for a new profile: it is not the cell."""
    keys, cells = np.arange(2), pa.array([["1", "2"], ["0.5"]], LIST)
    result = BATCH_RULES["sum"](keys, cells, pa.array([None, None], LIST))
    assert result.values.to_pylist() != cells.to_pylist()
    assert result.touched.tolist() == [True, True]


def test_a_sum_beyond_38_digits_stays_exact() -> None:
    big = "9" * 40
    check("sum", [0, 0], [[big], ["0.5"]], [["1"]])


def test_set_back_to_the_stored_value_still_touches_the_profile() -> None:
    check("set", [0, 0], [["b"], ["a"]], [["a"]])


@settings(max_examples=200, deadline=None)
@given(batch=batches(TEXTS, multi=True, stored=TEXTS))
def test_set_over_nothing_stored_matches_the_row_by_row_rule(
    batch: tuple[list[int], list[list[str] | None], list[list[str] | None]],
) -> None:
    """New profiles (no key has a stored value) take `set`'s shortcut: still exact."""
    keys, cells, current = batch
    check("set", keys, cells, [None] * len(current))


def test_one_row_a_key_still_sees_a_set_back_to_the_stored_value_as_unchanged() -> None:
    check("set", [1, 0], [["a"], ["b"]], [["a"], ["b"]])  # both the same as stored
    check("set", [0, 1], [["a"], None], [["b"], ["c"]])  # a change, and no cell
