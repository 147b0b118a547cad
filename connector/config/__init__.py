"""Connection, goal and segment models, and loading them from the goals folder with line numbers.

The names below load on first use (PEP 562): a goal's model (`imports/model.py`...)
imports parts of this package, and the connection model imports every goal's model
through `goals/registry.py`, so importing them eagerly here would make a cycle for
whoever imports a goal model first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.config.connection import Connection, Notifications, StorageSettings
    from connector.config.formats import ExportFormat, ImportFormat
    from connector.config.goal_parts import PROFILE_ID, Mapping, ProfileMatch, Source
    from connector.config.schedule import Schedule
    from connector.config.segments import ALL_SEGMENT, Condition, Segment
    from connector.config.workspace import Workspace, load_workspace
    from connector.exports.model import Destination, ExportColumn, ExportProfilesGoal
    from connector.goals.registry import Goal
    from connector.groups.model import ImportGroupsGoal
    from connector.imports.model import ImportProfilesGoal

_HOMES = {
    "connector.config.connection": ("Connection", "Notifications", "StorageSettings"),
    "connector.config.formats": ("ExportFormat", "ImportFormat"),
    "connector.config.goal_parts": ("PROFILE_ID", "Mapping", "ProfileMatch", "Source"),
    "connector.config.schedule": ("Schedule",),
    "connector.config.segments": ("ALL_SEGMENT", "Condition", "Segment"),
    "connector.config.workspace": ("Workspace", "load_workspace"),
    "connector.exports.model": ("Destination", "ExportColumn", "ExportProfilesGoal"),
    "connector.goals.registry": ("Goal",),
    "connector.groups.model": ("ImportGroupsGoal",),
    "connector.imports.model": ("ImportProfilesGoal",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    try:
        module = _MODULE_OF[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


__all__ = [
    "ALL_SEGMENT",
    "PROFILE_ID",
    "Condition",
    "Connection",
    "Destination",
    "ExportColumn",
    "ExportFormat",
    "ExportProfilesGoal",
    "Goal",
    "ImportFormat",
    "ImportGroupsGoal",
    "ImportProfilesGoal",
    "Mapping",
    "Notifications",
    "ProfileMatch",
    "Schedule",
    "Segment",
    "Source",
    "StorageSettings",
    "Workspace",
    "load_workspace",
]
