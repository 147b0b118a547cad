"""Segment masks over Arrow batches agree with the per-profile predicates, value for value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config.segments import Condition
from connector.engine.segment_index import compile_condition
from connector.engine.segments import any_value_in, condition_mask, has_values, profile_columns

PROPERTIES = ["a", "b", "id"]
VALUES = [
    "0", "1", "-1", "12.50", "12.5", "12.500000000000000000001", "1000", "999.99", "+5", "-0",
    "0.1", "0.10000000000000001", "1e3", " 12 ", "1_000", "١٢", "12,5", ".5", "5.", "NaN",
    "Infinity", "abc", "", "true", "TRUE", "False", "nl", "NL",
    "2024-03-01", "2024-02-29", "2023-02-29", "0000-01-01", "0001-01-01", "2024-13-01",
    "20240301", "2024-03-01T09:30:00+00:00", "2024-03-01T09:30:00.123456+00:00",
    "2024-03-01T23:59:60+00:00", "2024-03-01T10:30:00+01:00", "2024-03-01T09:30:00",
    "2024-03-01 09:30", "2024-03-01garbage", "9999-12-31T23:59:59+00:00",
    "2024-02-30", "2024-04-31", "0999-12-31", "2024-03-01T24:00:00+00:00",
    "2024-03-01T09:60:00+00:00", "2024-02-30T09:30:00+00:00", "2024-00-10",
]  # fmt: skip
DATES = [date(2024, 3, 1), date(2024, 2, 29), date(1, 1, 1), date(9999, 12, 31)]
MOMENTS = [
    datetime(2024, 3, 1, 9, 30),
    datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
    datetime(2024, 3, 1, 9, 30, 0, 123456, tzinfo=UTC),
    datetime(2024, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))),
]
OPERANDS: list[Any] = [0, 1, 12.5, 1000, -1, 0.1, 1e300, *DATES, *MOMENTS]
SCALARS: list[Any] = [*OPERANDS, True, False, "NL", "abc", "", "12.50"]

profiles = st.lists(
    st.fixed_dictionaries(
        {
            name: st.one_of(st.none(), st.lists(st.sampled_from(VALUES), max_size=3))
            for name in PROPERTIES
        }
    ),
    max_size=25,
)


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    tests = st.fixed_dictionaries(
        {"property": st.sampled_from(PROPERTIES)},
        optional={
            "exists": st.booleans(),
            "equals": st.sampled_from(SCALARS),
            "one_of": st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3),
            "gt": st.sampled_from(OPERANDS),
            "gte": st.sampled_from(OPERANDS),
            "lt": st.sampled_from(OPERANDS),
            "lte": st.sampled_from(OPERANDS),
        },
    )
    return tests.filter(lambda test: len(test) > 1)


conditions = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.fixed_dictionaries({"all": st.lists(children, max_size=3)}),
        st.fixed_dictionaries({"any": st.lists(children, max_size=3)}),
    ),
    max_leaves=6,
)


def table_of(rows: list[dict[str, list[str] | None]]) -> pa.Table:
    ids = pa.array([f"p{i}" for i in range(len(rows))], pa.string())
    seqs = pa.array(range(len(rows)), pa.int64())
    columns = [pa.array([row[name] for row in rows], pa.list_(pa.string())) for name in PROPERTIES]
    return pa.Table.from_arrays([ids, seqs, *columns], names=["id", "change_seq", *PROPERTIES])


@settings(max_examples=600, deadline=None)
@given(rows=profiles, where=conditions)
def test_mask_equals_the_per_profile_predicate(
    rows: list[dict[str, list[str] | None]], where: dict[str, Any]
) -> None:
    condition = Condition.model_validate(where)
    table = table_of(rows)

    mask = condition_mask(condition, profile_columns(table, PROPERTIES), table.num_rows)

    predicate = compile_condition(condition)
    expected = [predicate({k: v for k, v in row.items() if v is not None}) for row in rows]
    assert mask.to_pylist() == expected


@settings(max_examples=200, deadline=None)
@given(rows=profiles, offset=st.integers(0, 5))
def test_sliced_batches_and_nulls_are_read_at_their_own_offsets(
    rows: list[dict[str, list[str] | None]], offset: int
) -> None:
    table = table_of(rows).slice(offset)
    condition = Condition.model_validate({"property": "a", "gte": 1})

    mask = condition_mask(condition, profile_columns(table, PROPERTIES), table.num_rows)

    predicate = compile_condition(condition)
    expected = [predicate({"a": row["a"] or []}) for row in rows[offset:]]
    assert mask.to_pylist() == expected


def test_consent_and_presence_are_read_per_profile() -> None:
    column = pa.array([["marketing"], None, [], ["x", "sales"], [""]], pa.list_(pa.string()))

    assert any_value_in(column, ["sales", "marketing"]).to_pylist() == [
        True, False, False, True, False,
    ]  # fmt: skip
    assert has_values(column).to_pylist() == [True, False, False, True, True]


def test_a_numbers_last_digit_decides_even_where_float64_cannot_tell() -> None:
    column = pa.array([["1000.0000000000000001"], ["1000"], ["999.9999999999999999"]])
    table = pa.table({"id": ["x", "y", "z"], "change_seq": [1, 2, 3], "spent": column})
    condition = Condition.model_validate({"property": "spent", "gt": 1000})

    mask = condition_mask(condition, profile_columns(table, ["spent"]), 3)

    assert mask.to_pylist() == [True, False, False]


def test_segment_counts_from_the_stores_batches_equal_the_per_profile_counts(tmp_path) -> None:
    from connector.config.segments import Segment  # noqa: PLC0415
    from connector.engine.segment_index import SegmentIndex  # noqa: PLC0415
    from connector.storage import Profile, SQLiteStore  # noqa: PLC0415

    store = SQLiteStore(tmp_path / "store.db")
    with store.transaction() as tx:
        tx.save_profiles(
            Profile(f"p{i}", {"spent": [str(i * 10)], "country": ["NL" if i % 3 else "BE"]})
            for i in range(50)
        )
    index = SegmentIndex(
        [
            Segment(id="big", where=Condition.model_validate({"property": "spent", "gte": 200})),
            Segment(
                id="be", where=Condition.model_validate({"property": "country", "equals": "BE"})
            ),
        ]
    )
    try:
        counts = index.count_in_store(store)
        assert counts == index.count_members(store.iter_profiles())
        assert counts == {"all": 50, "big": 30, "be": 17}
    finally:
        store.close()
