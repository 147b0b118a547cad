"""Read-only commands: profiles, groups, segments, history."""

from __future__ import annotations

import argparse
import sys

from connector.app import App
from connector.cli.output import fail, print_json, print_properties, print_table
from connector.formats.keys import stored_key_normalizer
from connector.goals.runner import changed_files_note, skipped_files_note
from connector.goals.segments import SegmentIndex
from connector.storage import Profile, RunRecord


def profile_get(app: App, args: argparse.Namespace) -> int:
    profile = app.store.get_profile(args.id)
    if profile is None:
        fail(f"no profile with id {args.id!r}")
        return 1
    groups = app.store.groups_of_profile(profile.id)
    if args.json:
        print_json({**profile.as_json(), "groups": groups})
    else:
        _print_profile(profile, groups)
    return 0


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
    if not profiles and not args.json:
        sys.stderr.write(f"no profile has {args.property} = {args.value!r}\n")
    return 0


def profile_dump(app: App, args: argparse.Namespace) -> int:
    for profile in app.store.iter_profiles():
        if args.json:
            print_json(profile.as_json())
        else:
            _print_profile(profile, None)
    return 0


def _print_profile(profile: Profile, groups: dict[str, list[str]] | None) -> None:
    sys.stdout.write(f"profile {profile.id}\n")
    print_properties(profile.properties)
    for group_type, ids in (groups or {}).items():
        sys.stdout.write(f"  [{group_type}]  {', '.join(ids)}\n")


def group_get(app: App, args: argparse.Namespace) -> int:
    group = app.store.get_group(args.type, args.id)
    if group is None:
        fail(f"no {args.type} group with id {args.id!r}")
        return 1
    if args.json:
        print_json(group.as_json())
    else:
        sys.stdout.write(f"{group.type} {group.id}\n")
        print_properties(group.properties)
        sys.stdout.write(f"  members ({len(group.members)}): {', '.join(group.members)}\n")
    return 0


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
    return 0


def history(app: App, args: argparse.Namespace) -> int:
    if args.run_id is not None:
        run = app.store.get_run(args.run_id)
        if run is None:
            fail(f"no run {args.run_id}")
            return 1
        rejects = app.store.run_rejects(run.id)
        if args.json:
            print_json({**run.as_json(), "rejects": [str(reject) for reject in rejects]})
        else:
            _print_runs([run])
            if run.ran_by:
                sys.stdout.write(f"  ran by {run.ran_by}\n")
            for note in (changed_files_note(run.counts), skipped_files_note(run.counts)):
                if note:
                    sys.stdout.write(f"  {note}\n")
            for reject in rejects:
                sys.stdout.write(f"  rejected {reject}\n")
        return 0
    runs = app.store.list_runs(args.connection, limit=args.limit)
    if args.json:
        for run in runs:
            print_json(run.as_json())
    else:
        _print_runs(runs)
    return 0


def _print_runs(runs: list[RunRecord]) -> None:
    rows = []
    for run in runs:
        c = run.counts
        rows.append(
            (
                run.id,
                run.connection,
                run.goal or "*",
                run.trigger,
                run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"{(run.ended_at - run.started_at).total_seconds():.1f}s" if run.ended_at else "",
                f"{run.status}{' (dry run)' if run.dry_run else ''}",
                c.files,
                c.rows_read,
                c.rows_applied,
                c.rows_rejected,
                c.profiles_created,
                c.profiles_updated,
                c.profiles_exported,
                c.unique_profiles,
                (run.error or "")[:80],
            )
        )
    print_table(
        [
            "RUN",
            "CONNECTION",
            "GOAL",
            "TRIGGER",
            "STARTED (UTC)",
            "TOOK",
            "STATUS",
            "FILES",
            "READ",
            "APPLIED",
            "REJECTED",
            "CREATED",
            "UPDATED",
            "EXPORTED",
            "UNIQUE",
            "ERROR",
        ],
        rows,
    )
