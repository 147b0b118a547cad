"""Property: on any column, whole-column conversion equals `RowPlan.parse` cell by cell.

The oracle is the real per-row path: a `RowPlan` built from a goal with one
mapping, fed one `Row` per cell. Every row's values, which rows are rejected
and the exact reasons must agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config.formats import ImportFormat
from connector.engine._cells import WHITESPACE
from connector.engine.convert import convert_column, is_true_column
from connector.engine.rows import RowChanges, RowPlan
from connector.formats.reader import Row
from connector.imports.model import ImportProfilesGoal

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Europe/Dublin"]
PATTERNS = [
    "iso8601",
    "%d-%m-%Y",
    "%Y%m%d",
    "%m.%d.%Y",
    "%m/%d/%y",
    "%d-%m-%Y %H:%M",
    "%Y%m%d%H%M%S",
    "%d/%m/%y %H:%M:%S",
    "%d %b %Y",
]
# moments near daylight-saving changes, the calendar's ends and leap days
EDGES = [
    datetime(2024, 3, 31, 1), datetime(2024, 10, 27, 1), datetime(2024, 3, 10, 1),
    datetime(2024, 11, 3, 0), datetime(2024, 4, 7, 1), datetime(2024, 2, 29),
    datetime(1000, 1, 1), datetime(9999, 12, 31, 19), datetime(1, 1, 1), datetime(1937, 7, 1),
]  # fmt: skip


def oracle(cells, value_type, fmt, split):
    """(values, {row: reason}) from RowPlan.parse; `split` None means a sum column."""
    rule = "set" if split else "sum"
    goal = ImportProfilesGoal.model_validate(
        {
            "type": "import-profiles",
            "name": "g",
            "source": {"bucket": "bucket"},
            "format": fmt,
            "match": {"column": "id"},
            "mappings": [{"column": "c", "property": "p", "rule": rule, "type": value_type}],
        }
    )
    plan = RowPlan(goal, ["id", "c"], file="f")
    values, reasons = [], {}
    for row, cell in enumerate(cells):
        result = plan.parse(Row(row + 2, ["k", cell]))
        if isinstance(result, RowChanges):
            values.append(result.cells[0][1] if result.cells else None)
        else:
            values.append(None)
            reasons[row] = result.reason
    return values, reasons


def vectorised(cells, value_type, fmt, split):
    column = convert_column(
        pa.array(cells, pa.string()), value_type=value_type, fmt=fmt, split=split
    )
    errors = column.errors.to_pylist()
    assert errors == sorted(set(errors))
    return column.values.to_pylist(), {row: column.reason(row) for row in errors}


spaces = st.text(alphabet=WHITESPACE, max_size=2)
junk = st.text(max_size=8)


def padded(core):
    return st.tuples(spaces, core, spaces).map("".join)


def cells_of(piece, separator):
    one = st.one_of(padded(piece), junk, st.just(""), spaces)
    many = st.lists(one, min_size=1, max_size=3).map(separator.join)
    return st.lists(st.one_of(one, many), max_size=30)


def numbers(decimal):
    digits = st.text(alphabet="0123456789", min_size=1, max_size=40)
    signed = st.tuples(
        st.sampled_from(["", "", "-", "+"]),
        digits,
        st.sampled_from(["", decimal, "."]),
        st.text(alphabet="0123456789", max_size=6),
    )
    return st.one_of(signed.map("".join), st.sampled_from(["-0", f"-0{decimal}00", f"{decimal}5", "1 234", "1.234,5", "NaN", "1e5", "٣"]))  # fmt: skip


def moments():
    near_edges = st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        st.sampled_from(EDGES),
        st.integers(min_value=0, max_value=240),
    )
    return st.one_of(
        near_edges, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
    )


def written(pattern):
    iso_shapes = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]
    suffixes = ["", "", "Z", "+05:30", "-00:00", "+0100", "+14:00"]

    def text(moment, shape, suffix, slip):
        if pattern == "iso8601":
            out = moment.strftime(shape) + (suffix if "H" in shape else "")
        else:
            out = moment.strftime(pattern)
        if slip:  # an invalid day or a stray character
            out = out.replace("0", "", 1) if slip == 1 else out.replace("1", "3", 1)
        return out

    return st.builds(
        text,
        moments(),
        st.sampled_from(iso_shapes),
        st.sampled_from(suffixes),
        st.sampled_from([0, 0, 0, 1, 2]),
    )


@EXAMPLES
@given(st.data(), st.sampled_from([",", "."]), st.sampled_from(["|", "/"]))
def test_numbers_match_the_row_path(data, decimal, separator):
    fmt = ImportFormat(
        field_separator=";", decimal_separator=decimal, multi_value_separator=separator
    )
    split = data.draw(st.sampled_from([separator, None]))
    cells = data.draw(cells_of(numbers(decimal), separator))
    assert vectorised(cells, "number", fmt, split) == oracle(cells, "number", fmt, split)


@EXAMPLES
@given(
    st.data(),
    st.sampled_from(ZONES),
    st.sampled_from(PATTERNS),
    st.sampled_from(["date", "datetime"]),
)
def test_dates_and_datetimes_match_the_row_path(data, zone, pattern, value_type):
    fmt = ImportFormat(date_format=pattern, timezone=zone)
    cells = data.draw(cells_of(written(pattern), "|"))
    assert vectorised(cells, value_type, fmt, "|") == oracle(cells, value_type, fmt, "|")


DST_CHANGES = [datetime(2024, 3, 31, 1), datetime(2024, 10, 27, 1)]
"""Europe/Amsterdam's 2024 changes: 02:00-03:00 does not exist, then happens twice."""


@pytest.mark.parametrize("pattern", ["iso8601", "%d-%m-%Y %H:%M", "%Y%m%d%H%M%S"])
@pytest.mark.parametrize("zone", ZONES)
def test_every_minute_of_a_dst_change_matches_the_row_path_and_is_rejected_in_its_zone(
    zone, pattern
):
    fmt = ImportFormat(date_format=pattern, timezone=zone)
    shape = "%Y-%m-%dT%H:%M:%S" if pattern == "iso8601" else pattern
    moments = [base + timedelta(minutes=m) for base in DST_CHANGES for m in range(0, 180, 5)]
    cells = [moment.strftime(shape) for moment in moments]

    values, reasons = vectorised(cells, "datetime", fmt, "|")

    assert (values, reasons) == oracle(cells, "datetime", fmt, "|")
    in_change = {i for i, moment in enumerate(moments) if moment.hour == 2}
    if zone == "Europe/Amsterdam":
        assert set(reasons) == in_change
        spring, autumn = (
            cells[moments.index(datetime(2024, 3, 31, 2, 30))],
            cells[moments.index(datetime(2024, 10, 27, 2, 30))],
        )
        assert f"{spring!r} does not exist in time zone Europe/Amsterdam" in str(reasons.values())
        assert f"{autumn!r} happens twice in time zone Europe/Amsterdam" in str(reasons.values())
    elif zone == "UTC":
        assert reasons == {}


@EXAMPLES
@given(st.data())
def test_booleans_and_text_match_the_row_path(data):
    fmt = ImportFormat(true_values=["yes", "Ja", "1"], false_values=["no", "Nee", "0"])
    spellings = st.sampled_from(
        ["yes", "YES", "ja", "JA", "1", "no", "nee", "NEE", "0", "t", "maybe", "é"]
    )
    booleans = data.draw(cells_of(spellings, "|"))
    assert vectorised(booleans, "boolean", fmt, "|") == oracle(booleans, "boolean", fmt, "|")
    texts = data.draw(cells_of(st.text(max_size=6), "|"))
    assert vectorised(texts, "text", fmt, "|") == oracle(texts, "text", fmt, "|")


@EXAMPLES
@given(
    st.lists(
        st.one_of(padded(st.sampled_from(["yes", "No", "1", "nee", "x", "a|b"])), spaces, junk),
        max_size=30,
    )
)
def test_delete_flags_match_the_row_path(cells):
    fmt = ImportFormat()
    goal = ImportProfilesGoal.model_validate(
        {
            "type": "import-profiles",
            "name": "g",
            "source": {"bucket": "bucket"},
            "match": {"column": "id"},
            "delete_column": "del",
            "mappings": [{"column": "c", "property": "p"}],
        }
    )
    plan = RowPlan(goal, ["id", "c", "del"], file="f")
    flags = is_true_column(pa.array(cells, pa.string()), fmt)
    errors = flags.errors.to_pylist()
    for row, cell in enumerate(cells):
        result = plan.parse(Row(row + 2, ["k", "", cell]))
        if isinstance(result, RowChanges):
            assert row not in errors
            assert (flags.values[row].as_py() is True) == result.delete
            assert (flags.values[row].as_py() is None) == (not cell.strip())
        else:
            assert flags.reason(row) == result.reason
