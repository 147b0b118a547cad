"""Commands that check or run goals: validate, scan, preview, run, schedule, daemon."""

from __future__ import annotations

import argparse
import asyncio
import sys

from connector.app import App
from connector.cli.exit_codes import ExitCode
from connector.cli.interrupts import StopOnSignals
from connector.cli.output import print_table
from connector.cli.progress import choose_progress
from connector.config.connection import ImportGoal
from connector.errors import ConnectorError
from connector.exports.model import ExportProfilesGoal
from connector.goals.registry import GOAL_TYPES
from connector.goals.runner import (
    RunOptions,
    RunOutcome,
    changed_files_note,
    credentials_of,
    run_connection,
    skipped_files_note,
)
from connector.imports.files import FileState, ScannedFile, goal_fingerprint, scan_files
from connector.imports.preview import preview_file
from connector.service.mail import notify_run
from connector.service.scheduling import next_fire_times, spread_of
from connector.sources import s3_client
from connector.storage import RunStatus, Trigger


def validate(app: App, args: argparse.Namespace) -> int:
    """Exit 0 with a line per connection, or ConfigError (printed FILE:LINE: message) → 2."""
    workspace = app.workspace
    for connection_id, connection in sorted(workspace.connections.items()):
        kinds = dict.fromkeys(GOAL_TYPES, 0)
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
    return ExitCode.OK


def _import_goal(app: App, connection_id: str, goal_name: str) -> ImportGoal:
    goal = app.workspace.connection(connection_id).goal(goal_name)
    if isinstance(goal, ExportProfilesGoal):
        raise ConnectorError(f"goal {goal_name!r} exports; scan and preview apply to import goals")
    return goal


def scan(app: App, args: argparse.Namespace) -> int:
    connection = app.workspace.connection(args.connection)
    goal = _import_goal(app, args.connection, args.goal)

    async def files() -> list[ScannedFile]:
        ledger = app.store.ledger(connection.id, goal.name)
        async with s3_client(credentials_of(connection)) as s3:
            return await scan_files(s3, goal, ledger, goal_fingerprint(goal, connection.objectives))

    scanned = asyncio.run(files())
    print_table(
        ["KEY", "SIZE", "LAST MODIFIED (UTC)", "STATE", "WHY"],
        [
            (
                f.key,
                f.object.size,
                f.object.last_modified.strftime("%Y-%m-%d %H:%M:%S"),
                f.state,
                f.reason,
            )
            for f in scanned
        ],
    )
    counts = {state: sum(1 for f in scanned if f.state is state) for state in FileState}
    sys.stdout.write(
        f"{len(scanned)} file(s): "
        + ", ".join(f"{count} {state}" for state, count in counts.items())
        + "\n"
    )
    return ExitCode.OK


def preview(app: App, args: argparse.Namespace) -> int:
    connection = app.workspace.connection(args.connection)
    goal = _import_goal(app, args.connection, args.goal)
    shown = asyncio.run(
        preview_file(
            credentials_of(connection),
            app.store,
            connection.id,
            connection.objectives,
            goal,
            args.key,
            args.rows,
        )
    )
    out = sys.stdout
    out.write(f"file {shown.key}\ncolumns: {', '.join(shown.columns)}\n")
    for row in shown.rows:
        out.write(f"\nline {row.line}: {row.key or ''} -> {row.target}\n")
        for column, raw, prop, rule, values in row.cells:
            out.write(f"  {column} = {raw!r} -> {prop} ({rule}) {values}\n")
    return ExitCode.OK


def run(app: App, args: argparse.Namespace) -> int:
    """Exit 0 success, 1 failure, 3 partial (some rows rejected), 130 interrupted (Ctrl-C)."""
    progress = choose_progress(quiet=args.quiet)
    options = RunOptions(
        goal=args.goal,
        trigger=Trigger.MANUAL,
        dry_run=args.dry_run,
        batch_size=app.settings.batch_size,
        max_rejects=app.settings.max_rejects_stored,
        parse_in_child_bytes=app.settings.parse_in_child_bytes,
        columnar=app.settings.columnar_engine,
        progress=progress,
    )
    connection = app.workspace.connection(args.connection)
    signals = StopOnSignals(options.stopping)

    async def run_and_notify() -> RunOutcome:
        with signals.in_loop():
            outcome = await run_connection(app.store, app.workspace, args.connection, options)
            result = outcome.result
            await notify_run(
                app.settings, connection, outcome.record, result.errors, result.rejects
            )
        return outcome

    with signals.installed(), progress:
        outcome = asyncio.run(run_and_notify())
    record = outcome.record
    counts = record.counts
    sys.stdout.write(
        f"run {record.id} {record.status}{' (dry run: nothing written)' if record.dry_run else ''}: "
        f"{counts.files} file(s), {counts.rows_read} rows read, {counts.rows_applied} applied, "
        f"{counts.rows_rejected} rejected, {counts.rows_skipped} skipped; "
        f"profiles {counts.profiles_created} created, {counts.profiles_updated} updated, "
        f"{counts.profiles_exported} exported\n"
    )
    note = changed_files_note(counts)
    if note:
        sys.stdout.write(f"  {note}\n")
    skipped = skipped_files_note(counts)
    if skipped:
        sys.stdout.write(f"  {skipped}{'' if args.verbose else ' (--verbose names them)'}\n")
    if args.verbose:
        for passed in outcome.result.skipped:
            sys.stdout.write(f"  skipped {passed}\n")
    for reject in outcome.result.rejects[:20]:
        sys.stdout.write(f"  rejected {reject}\n")
    if counts.rows_rejected > 20:
        sys.stdout.write(f"  ... see `connector history --run {record.id}` for all kept rejects\n")
    for error in outcome.result.errors:
        sys.stdout.write(f"  error: {error}\n")
    if record.status is RunStatus.INTERRUPTED:
        sys.stdout.write(
            f"  interrupted: files not finished are left as they were; "
            f"`connector run {record.connection}` takes them up\n"
        )
    return {
        RunStatus.SUCCESS: ExitCode.OK,
        RunStatus.PARTIAL: ExitCode.PARTIAL,
        RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
    }.get(record.status, ExitCode.FAILED)


def schedule(app: App, args: argparse.Namespace) -> int:
    """Next fire times per connection, ISO 8601 in the schedule's time zone."""
    workspace = app.workspace
    ids = [args.connection] if args.connection else sorted(workspace.connections)
    for connection_id in ids:
        connection = workspace.connection(connection_id)
        if connection.schedule is None:
            sys.stdout.write(f"{connection_id}: on demand only (no schedule)\n")
            continue
        state = "" if connection.enabled else " (disabled: the daemon will not run it)"
        offset = spread_of(connection, app.settings)
        spread = f", spread +{offset}" if offset else ""
        sys.stdout.write(
            f"{connection_id}: {connection.schedule.form} in {connection.schedule.timezone}"
            f"{spread}{state}\n"
        )
        for moment in next_fire_times(connection.schedule, args.count, offset=offset):
            sys.stdout.write(f"  {moment.isoformat()}\n")
    return ExitCode.OK


def daemon(app: App, args: argparse.Namespace) -> int:
    """Run until SIGTERM or Ctrl-C (0); 2 if the goals folder is invalid at start."""
    # the scheduler and the metrics endpoint load here: no other command needs them
    from connector.service.daemon import run_daemon  # noqa: PLC0415

    return run_daemon(app.settings)
