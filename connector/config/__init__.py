"""Connection, goal and segment models, and loading them from the goals folder with line numbers."""

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
