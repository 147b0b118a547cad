"""Each registry names exactly what its config model accepts, so the two never drift.

The pydantic models keep their Literals (they feed the JSON Schema); the
registries are what the code looks a name up in. Adding a name to one and
not the other fails here, before a goal file could reach the gap.
"""

from __future__ import annotations

from typing import get_args

from connector.config.goal_parts import RuleName, ValueType
from connector.config.schedule import SCHEDULE_FORMS, Schedule
from connector.engine.columns import COLUMN_VALUES
from connector.engine.convert import COLUMN_CONVERTERS
from connector.engine.rules import BATCH_RULES
from connector.engine.value_rules import RULES
from connector.exports.model import ColumnValue
from connector.formats.values import CONVERTERS
from connector.formats.values import ValueType as FormatsValueType
from connector.goals.registry import GOAL_TYPES, goal_runner, goal_type_names
from connector.service.scheduling import FORM_TRIGGERS


def test_every_goal_type_of_the_goal_models_has_a_runner_and_no_other() -> None:
    assert set(GOAL_TYPES) == set(goal_type_names())
    for goal_type in GOAL_TYPES:
        assert callable(goal_runner(goal_type))


def test_row_rules_and_batch_rules_are_the_rules_a_mapping_accepts() -> None:
    assert set(RULES) == set(get_args(RuleName))
    assert set(BATCH_RULES) == set(get_args(RuleName))


def test_converters_cover_the_value_types_a_mapping_accepts() -> None:
    assert set(get_args(FormatsValueType)) == set(get_args(ValueType))
    assert set(CONVERTERS) == set(get_args(ValueType))
    assert set(COLUMN_CONVERTERS) == set(get_args(ValueType))


def test_export_column_values_are_the_values_a_column_accepts() -> None:
    assert set(COLUMN_VALUES) == set(get_args(ColumnValue))


def test_schedule_forms_are_the_fields_of_a_schedule_and_each_has_a_trigger() -> None:
    assert set(FORM_TRIGGERS) == set(SCHEDULE_FORMS)
    assert set(SCHEDULE_FORMS) <= set(Schedule.model_fields)
