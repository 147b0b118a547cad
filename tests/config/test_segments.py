"""segments.yaml: conditions nest freely; every mistake has its line."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from connector.engine.segment_index import compile_condition

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

CONTRACT_SEGMENTS = """
segments:
  - id: high-value
    name: High value customers
    where:
      all:
        - {property: total_spent, gte: 1000}
        - {property: email, exists: true}
        - any:
            - {property: vip, equals: true}
            - {property: country, one_of: [NL, BE]}
"""


def test_contract_example_segments_load_with_nested_conditions(goals: GoalsFolder) -> None:
    goals.write("segments.yaml", CONTRACT_SEGMENTS)
    segments = goals.load().segments
    assert list(segments) == ["high-value"]
    segment = segments["high-value"]
    assert segment.title == "High value customers"
    assert segment.where.all is not None
    spent, email, nested = segment.where.all
    assert (spent.property, spent.gte) == ("total_spent", 1000)
    assert (email.property, email.exists) == ("email", True)
    assert nested.any is not None
    assert [condition.property for condition in nested.any] == ["vip", "country"]
    assert nested.any[1].one_of == ["NL", "BE"]


def test_a_date_bound_is_read_as_a_date(goals: GoalsFolder) -> None:
    goals.write(
        "segments.yaml",
        """
        segments:
          - id: recent
            where: {property: last_order, gte: 2024-01-31, lt: 100}
        """,
    )
    where = goals.load().segments["recent"].where
    assert (where.gte, where.lt) == (dt.date(2024, 1, 31), 100)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            """
            segments:
              - id: high-value
                where:
                  all:
                    - {property: total_spent, gte: 1000}
                  property: email
            """,
            3,
            "segments[0].where: a condition is either `all`/`any` or a property test, not both",
        ),
        (
            """
            segments:
              - id: high-value
                where:
                  all:
                    - {property: total_spent, gte: 1000}
                    - property: email
            """,
            6,
            "segments[0].where.all[1]: condition on 'email' needs an operator: "
            "exists, equals, one_of, gt, gte, lt, lte",
        ),
        (
            """
            segments:
              - id: both
                where:
                  all: [{property: a, exists: true}]
                  any: [{property: b, exists: true}]
            """,
            3,
            "segments[0].where: use `all` or `any` in one condition, not both; nest them instead",
        ),
        (
            """
            segments:
              - id: empty
                where: {}
            """,
            3,
            "segments[0].where: a condition needs `all`, `any` or `property`",
        ),
        (
            """
            segments:
              - id: all
                where: {property: email, exists: true}
            """,
            2,
            "segments[0]: segment id 'all' is built in; choose another id",
        ),
        (
            """
            segments:
              - id: high-value
                where:
                  all:
                    - any:
                        - {property: vip, equal: true}
            """,
            6,
            "unknown key 'equal' in segments[0].where.all[0].any[0]",
        ),
        (
            """
            segments:
              - id: high-value
                where:
                  all:
                    - property: total_spent
                      gte: lots
            """,
            6,
            "segments[0].where.all[0].gte: gt, gte, lt and lte compare with a number or a date",
        ),
        (
            """
            segments:
              - id: nl
                where:
                  property: country
                  equals: [NL, BE]
            """,
            5,
            "segments[0].where.equals: expected one text, number, boolean or date value",
        ),
        (
            """
            segments:
              - id: nl
                where:
                  property: country
                  one_of: [NL, [BE]]
            """,
            5,
            "segments[0].where.one_of[1]: expected one text, number, boolean or date value",
        ),
        (
            """
            segments:
              - id: high value
                where: {property: email, exists: true}
            """,
            2,
            "segments[0].id: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$'",
        ),
        (
            """
            segments:
              - id: high-value
            """,
            2,
            "missing required key 'segments[0].where'",
        ),
        (
            """
            segment:
              - id: high-value
            """,
            1,
            "unknown key 'segment'",
        ),
    ],
    ids=[
        "all and property",
        "no operator",
        "all and any",
        "empty condition",
        "id all reserved",
        "nested typo",
        "bound not a number",
        "equals a list",
        "one_of nested list",
        "bad id",
        "missing where",
        "misspelled segments",
    ],
)
def test_bad_segment_is_reported_with_its_line(
    goals: GoalsFolder, text: str, line: int, message: str
) -> None:
    path = goals.write("segments.yaml", text)
    goals.expect(path, line, message)


def test_duplicate_segment_ids_are_reported_at_the_second_id(goals: GoalsFolder) -> None:
    path = goals.write(
        "segments.yaml",
        """
        segments:
          - id: high-value
            where: {property: total_spent, gte: 1000}
          - id: newsletter
            where: {property: interests, equals: newsletter}
          - name: Big spenders
            id: high-value
            where: {property: total_spent, gte: 5000}
        """,
    )
    goals.expect(path, 7, "segments[2].id: segment ids must be unique: high-value")


def test_an_empty_segments_file_defines_no_segments(goals: GoalsFolder) -> None:
    goals.write("segments.yaml", "# no segments yet\n")
    assert goals.load().segments == {}


def test_a_segments_file_that_is_a_list_is_reported(goals: GoalsFolder) -> None:
    path = goals.write("segments.yaml", "- id: high-value\n")
    goals.expect(path, 1, "a segments file must be a mapping with a `segments:` list")


def test_a_segment_on_norway_compares_with_the_text_no(goals: GoalsFolder) -> None:
    goals.write(
        "segments.yaml",
        """
        segments:
          - id: nordics
            where: {property: country, one_of: [NO, SE, DK]}
          - id: norway
            where: {property: country, equals: NO}
        """,
    )
    segments = goals.load().segments
    assert segments["nordics"].where.one_of == ["NO", "SE", "DK"]
    assert segments["norway"].where.equals == "NO"
    in_norway = compile_condition(segments["norway"].where)
    assert in_norway({"country": ["NO"]})
    assert not in_norway({"country": ["false"]})
