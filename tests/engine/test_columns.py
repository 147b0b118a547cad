"""Export columns built per batch equal the per-profile cells of the previous release."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config.formats import ExportFormat
from connector.config.segments import Condition
from connector.engine.columns import ExportColumns, RowRules, hasher
from connector.engine.segments import condition_mask
from connector.exports.model import ExportColumn
from connector.formats.writer import format_date, format_number

PROPERTIES = ["email", "when", "amount"]
VALUES = [
    "", "Ann@X.nl ", "+31 (0)6-1234 5678", "n/a", "12.50", "-0.5", "1.2.3", "42",
    "2024-03-01", "2024-02-30", "20240301", "2024-03-01T23:30:00+00:00",
    "2024-07-01T09:30:00.5+00:00", "not a date", "ünï", "a|b",
]  # fmt: skip
SEGMENTS = {
    "has-email": Condition.model_validate({"property": "email", "exists": True}),
    "big": Condition.model_validate({"property": "amount", "gt": 10}),
}
COLUMNS = [
    {"header": "id", "value": "profile_id"},
    {"header": "hid", "value": "profile_id", "hash": "sha256"},
    {"header": "text", "text": "CDP"},
    {"header": "email", "property": "email"},
    {"header": "email_h", "property": "email", "hash": "email_lc_sha256"},
    {"header": "phone_h", "property": "email", "hash": "phone_sha256"},
    {"header": "when_d", "property": "when", "type": "date"},
    {"header": "when_t", "property": "when", "type": "datetime"},
    {"header": "amount", "property": "amount", "type": "number"},
    {"header": "segs", "value": "segments"},
    {"header": "some", "value": "segments", "segments": ["big", "all"]},
    {"header": "perm", "value": "permission_level"},
    {"header": "house", "value": "groups", "group_type": "household"},
]

profiles = st.lists(
    st.fixed_dictionaries(
        {
            name: st.one_of(st.none(), st.lists(st.sampled_from(VALUES), max_size=3))
            for name in [*PROPERTIES, "permission_level"]
        }
    ),
    max_size=20,
)
one_value_profiles = st.lists(  # every property present holds one value: cells take no join
    st.fixed_dictionaries(
        {
            name: st.one_of(st.none(), st.lists(st.sampled_from(VALUES), min_size=1, max_size=1))
            for name in [*PROPERTIES, "permission_level"]
        }
    ),
    max_size=20,
)
formats = st.builds(
    ExportFormat,
    field_separator=st.just(";"),
    decimal_separator=st.sampled_from([".", ","]),
    date_format=st.sampled_from(["iso8601", "%d-%m-%Y", "%Y%m%d %H:%M"]),
    timezone=st.sampled_from(["UTC", "Europe/Amsterdam"]),
)


def reference_cell(
    column: ExportColumn,
    fmt: ExportFormat,
    profile_id: str,
    properties: dict[str, list[str]],
    groups: dict[str, list[str]],
) -> str | None:
    """The previous release's cell for one profile (its ColumnPlan, condensed)."""
    separator = fmt.multi_value_separator
    members = [s for s, c in SEGMENTS.items() if _member(c, properties)]
    if column.text is not None:
        return column.text
    if column.value == "profile_id":
        return hasher(column.hash)(profile_id) or "" if column.hash else profile_id
    if column.value == "segments":
        if column.segments is None:
            return separator.join(members) or None
        member_of = {"all", *members}
        return separator.join(s for s in dict.fromkeys(column.segments) if s in member_of) or None
    if column.value == "groups":
        ids = groups.get(profile_id)
        return separator.join(ids) if ids else None
    name = column.property or column.value or ""
    values = properties.get(name)
    if not values:
        return None
    if column.type == "number":
        values = [format_number(v, fmt.decimal_separator) for v in values]
    elif column.type in ("date", "datetime"):
        values = [format_date(v, fmt.date_format, fmt.timezone) for v in values]
    if column.hash is not None:
        digest = hasher(column.hash)
        return separator.join(h for h in map(digest, values) if h is not None)
    return separator.join(values)


def _member(condition: Condition, properties: dict[str, list[str]]) -> bool:
    from connector.engine.segment_index import compile_condition  # noqa: PLC0415

    return compile_condition(condition)(properties)


@settings(max_examples=200, deadline=None)
@given(rows=profiles | one_value_profiles, fmt=formats)
def test_batch_cells_equal_the_per_profile_cells(
    rows: list[dict[str, list[str] | None]], fmt: ExportFormat
) -> None:
    columns = [ExportColumn.model_validate(c) for c in COLUMNS]
    plan = ExportColumns(columns, fmt)
    ids = pa.array([f"p{i}" for i in range(len(rows))], pa.string())
    lists = {
        name: pa.array([row.get(name) for row in rows], pa.list_(pa.string()))
        for name in plan.properties
    }
    masks = {s: condition_mask(c, lists, len(rows)) for s, c in SEGMENTS.items()}
    groups = {"household": {"p0": ["h1", "h2"], "p2": ["h3"]}}

    table = plan.build(ids, lists, masks, groups)

    expected = [
        [
            reference_cell(
                column,
                fmt,
                f"p{i}",
                {k: v for k, v in row.items() if v is not None},
                groups["household"],
            )
            for column in columns
        ]
        for i, row in enumerate(rows)
    ]
    assert [list(r.values()) for r in table.to_pylist()] == expected


def test_only_profiles_with_a_property_value_are_kept() -> None:
    plan = ExportColumns([ExportColumn(header="e", property="email")], ExportFormat())
    lists = {"email": pa.array([["a"], None, [], [""]], pa.list_(pa.string()))}

    assert plan.has_property_value(lists, 4).to_pylist() == [True, False, False, True]


def test_required_and_dedupe_by_admit_the_same_rows_per_batch_as_row_by_row() -> None:
    cells: list[list[Any]] = [
        ["p1", "a", None], ["p2", "a", "1"], ["p3", "", "2"], ["p4", "b", "3"], ["p5", "b", "4"],
    ]  # fmt: skip
    headers = ["id", "email", "phone"]
    fmt = ExportFormat()
    one = RowRules(headers, fmt, required=["phone"], dedupe_by=["email"])
    batch = RowRules(headers, fmt, required=["phone"], dedupe_by=["email"])
    table = pa.table({str(i): [row[i] for row in cells] for i in range(3)})

    admitted = batch.admit_table(table)

    assert [list(r.values()) for r in admitted.to_pylist()] == [r for r in cells if one.admit(r)]
    assert (batch.without_required, batch.duplicates) == (one.without_required, one.duplicates)
    assert (batch.without_required, batch.duplicates) == (1, 1)
