"""Commands that check or run goals: validate, scan, preview, run, schedule, daemon."""

from __future__ import annotations

import argparse
import sys

from connector.app import App
from connector.config.goals import ExportProfilesGoal, ImportGroupsGoal, ImportProfilesGoal


def validate(app: App, args: argparse.Namespace) -> int:
    """Exit 0 with a line per connection, or ConfigError (printed FILE:LINE: message) → 1."""
    workspace = app.workspace
    for connection_id, connection in sorted(workspace.connections.items()):
        kinds = {"import-profiles": 0, "export-profiles": 0, "import-groups": 0}
        for goal in connection.goals:
            kinds[goal.type] += 1
        schedule = connection.schedule.form if connection.schedule else "on demand"
        state = "" if connection.enabled else ", disabled"
        sys.stdout.write(
            f"{workspace.files[connection_id].name}: ok — connection {connection_id!r} "
            f"({connection.title}): {kinds['import-profiles']} import, "
            f"{kinds['export-profiles']} export, {kinds['import-groups']} group goal(s); "
            f"schedule {schedule}{state}\n"
        )
    sys.stdout.write(f"segments: {len(workspace.segments)} defined\n")
    return 0


def scan(app: App, args: argparse.Namespace) -> int:
    raise NotImplementedError


def preview(app: App, args: argparse.Namespace) -> int:
    raise NotImplementedError


def run(app: App, args: argparse.Namespace) -> int:
    raise NotImplementedError


def schedule(app: App, args: argparse.Namespace) -> int:
    raise NotImplementedError


def daemon(app: App, args: argparse.Namespace) -> int:
    raise NotImplementedError


__all__ = ["ExportProfilesGoal", "ImportGroupsGoal", "ImportProfilesGoal"]
