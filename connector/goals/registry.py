"""The goal types: each `type:` of a goal file and the function that runs it.

Adding a goal type touches its own folder (its model in `<folder>/model.py`,
its runner in `<folder>/goal.py`) and two lines here: the model in `Goal`,
the runner in `GOAL_TYPES`. Runners are named, not
imported, so a run loads only the modules of the goals it has.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, get_args

from pydantic import Field

from connector.exports.model import ExportProfilesGoal
from connector.groups.model import ImportGroupsGoal
from connector.imports.model import ImportProfilesGoal

if TYPE_CHECKING:
    from connector.goals.context import GoalContext, GoalResult

Goal = Annotated[
    ImportProfilesGoal | ExportProfilesGoal | ImportGroupsGoal, Field(discriminator="type")
]
"""A goal of a connection file, by its `type:` (one member per goal type)."""

ImportGoal = ImportProfilesGoal | ImportGroupsGoal
"""The goal types that read files from S3."""

GoalRunner = Callable[["GoalContext", Any], Awaitable["GoalResult"]]

GOAL_TYPES: dict[str, str] = {
    "import-profiles": "connector.imports.goal:import_profiles",
    "import-groups": "connector.groups.goal:import_groups",
    "export-profiles": "connector.exports.goal:export_profiles",
}
"""Goal type -> "module:function" of its runner (an async function of the context and goal)."""


def goal_type_names() -> tuple[str, ...]:
    """The `type:` values the goal models accept (the discriminated union's Literals)."""
    union = get_args(Goal)[0]
    return tuple(get_args(model.model_fields["type"].annotation)[0] for model in get_args(union))


def goal_runner(goal_type: str) -> GoalRunner:
    """The runner of one goal type; KeyError names a type the registry lacks."""
    try:
        module_name, _, function = GOAL_TYPES[goal_type].partition(":")
    except KeyError:
        raise KeyError(f"unknown goal type {goal_type!r}") from None
    runner: GoalRunner = getattr(importlib.import_module(module_name), function)
    return runner
