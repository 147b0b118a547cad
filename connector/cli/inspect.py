"""Read-only commands: profiles, groups, segments, history."""

from __future__ import annotations

import argparse
import sys

from connector.app import App
from connector.cli.exit_codes import ExitCode
from connector.cli.history_table import print_run, print_runs
from connector.cli.output import fail, print_json, print_properties, print_table
from connector.engine.segment_index import SegmentIndex
from connector.errors import ConfigError
from connector.formats.keys import stored_key_normalizer
from connector.goals.runner import changed_files_note, skipped_files_note
from connector.storage import Profile


def profile_get(app: App, args: argparse.Namespace) -> int:
    profile = app.store.get_profile(args.id)
    if profile is None:
        fail(f"no profile with id {args.id!r}")
        return ExitCode.NOT_FOUND
    groups = app.store.groups_of_profile(profile.id)
    if args.json:
        print_json({**profile.as_json(), "groups": groups})
    else:
        _print_profile(profile, groups)
    return ExitCode.OK


def profile_find(app: App, args: argparse.Namespace) -> int:
    value = args.value
    if args.property in app.store.unique_properties():  # written as match.normalize writes it
        value = stored_key_normalizer(app.store.key_normalization(args.property))(value)
    profiles = app.store.find_profiles(args.property, value)
    for profile in profiles:
        if args.json:
            print_json(profile.as_json())
        else:
            _print_profile(profile, app.store.groups_of_profile(profile.id))
    if not profiles:
        sys.stderr.write(f"no profile has {args.property} = {args.value!r}\n")
        return ExitCode.NOT_FOUND
    return ExitCode.OK


def profile_dump(app: App, args: argparse.Namespace) -> int:
    for profile in app.store.iter_profiles():
        if args.json:
            print_json(profile.as_json())
        else:
            _print_profile(profile, None)
    return ExitCode.OK


def _print_profile(profile: Profile, groups: dict[str, list[str]] | None) -> None:
    sys.stdout.write(f"profile {profile.id}\n")
    print_properties(profile.properties)
    for group_type, ids in (groups or {}).items():
        sys.stdout.write(f"  [{group_type}]  {', '.join(ids)}\n")


def group_get(app: App, args: argparse.Namespace) -> int:
    group = app.store.get_group(args.type, args.id)
    if group is None:
        fail(f"no {args.type} group with id {args.id!r}")
        return ExitCode.NOT_FOUND
    if args.json:
        print_json(group.as_json())
    else:
        sys.stdout.write(f"{group.type} {group.id}\n")
        print_properties(group.properties)
        sys.stdout.write(f"  members ({len(group.members)}): {', '.join(group.members)}\n")
    return ExitCode.OK


def segments(app: App, args: argparse.Namespace) -> int:
    index = SegmentIndex(app.workspace.segments.values())
    counts = index.count_in_store(app.store)
    if args.json:
        for segment_id, count in counts.items():
            print_json({"id": segment_id, "name": index.title(segment_id), "members": count})
    else:
        print_table(
            ["SEGMENT", "NAME", "MEMBERS"],
            [(segment_id, index.title(segment_id), count) for segment_id, count in counts.items()],
        )
    return ExitCode.OK


def history(app: App, args: argparse.Namespace) -> int:
    if args.run_id is not None:
        run = app.store.get_run(args.run_id)
        if run is None:
            fail(f"no run {args.run_id} in the history")
            return ExitCode.NOT_FOUND
        rejects = app.store.run_rejects(run.id)
        if args.json:
            print_json({**run.as_json(), "rejects": [str(reject) for reject in rejects]})
        else:
            print_run(run)
            if run.ran_by:
                sys.stdout.write(f"  ran by    {run.ran_by}\n")
            for note in (changed_files_note(run.counts), skipped_files_note(run.counts)):
                if note:
                    sys.stdout.write(f"  {note}\n")
            for reject in rejects:
                sys.stdout.write(f"  rejected {reject}\n")
        return ExitCode.OK
    runs = app.store.list_runs(args.connection, limit=args.limit, since=args.since)
    if args.connection and not runs and not _known_connection(app, args.connection):
        fail(f"no connection {args.connection!r}: not in the goals folder, no run in the history")
        return ExitCode.NOT_FOUND
    if args.json:
        for run in runs:
            print_json(run.as_json())
    else:
        print_runs(runs)
    return ExitCode.OK


def _known_connection(app: App, connection: str) -> bool:
    """In the goals folder, or in the history (a connection since removed keeps its runs)."""
    if app.store.list_runs(connection, limit=1):
        return True
    try:
        return connection in app.workspace.connections
    except ConfigError:
        return False  # an invalid goals folder does not stop `history`
