"""Connection, goal and segment models, and loading them from the goals folder with line numbers."""

from connector.config.connection import Connection, Notifications, StorageSettings
from connector.config.formats import ExportFormat, ImportFormat
from connector.config.goals import (
    PROFILE_ID,
    Destination,
    ExportColumn,
    ExportProfilesGoal,
    Goal,
    ImportGroupsGoal,
    ImportProfilesGoal,
    Mapping,
    ProfileMatch,
    Source,
)
from connector.config.schedule import Schedule
from connector.config.segments import ALL_SEGMENT, Condition, Segment
from connector.config.workspace import Workspace, load_workspace

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
