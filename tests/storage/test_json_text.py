"""Stored JSON through orjson is the text the standard library wrote: old stores compare equal."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from connector.storage import _json

PROPERTIES = st.dictionaries(st.text(), st.lists(st.text()))


def standard(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@given(PROPERTIES)
def test_properties_are_written_as_the_standard_library_wrote_them(
    properties: dict[str, list[str]],
) -> None:
    assert _json.dumps(properties) == standard(properties)
    assert _json.loads(_json.dumps(properties)) == properties


def test_what_orjson_refuses_still_goes_through_the_standard_encoder() -> None:
    for value in ({"lone \ud800 surrogate": ["x"]}, {1: ["not a text key"]}):
        assert _json.dumps(value) == standard(value)


def test_counts_keep_their_text() -> None:
    counts = {"rows_read": 200_000, "files": 3, "bytes": 1 << 40}
    assert _json.dumps(counts) == standard(counts)
