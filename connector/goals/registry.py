"""The goal types: each `type:` of a goal file and the function that runs it.

Adding a goal type touches its own module (model in `config/goals.py`,
runner in `goals/<type>.py`) and one line here. Runners are named, not
imported, so a run loads only the modules of the goals it has.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, get_args

from connector.config.goals import Goal

if TYPE_CHECKING:
    from connector.goals.context import GoalContext, GoalResult

GoalRunner = Callable[["GoalContext", Any], Awaitable["GoalResult"]]

GOAL_TYPES: dict[str, str] = {
    "import-profiles": "connector.goals.import_profiles:import_profiles",
    "import-groups": "connector.goals.import_groups:import_groups",
    "export-profiles": "connector.goals.export_profiles:export_profiles",
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
