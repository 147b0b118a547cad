"""`connector draft SAMPLE [--connection ID]`: an import-profiles goal drafted from a sample."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from pathlib import Path

from connector.app import App
from connector.config import Workspace
from connector.config.connection import Connection
from connector.errors import ConfigError, ConnectorError
from connector.formats.sniff import sniff
from connector.goals.runner import credentials_of
from connector.groups.model import ImportGroupsGoal
from connector.imports.draft import (
    PLACEHOLDER_BUCKET,
    GoalDraft,
    existing_normalize,
    goal_name_of,
    match_property_of,
    render_connection,
    render_goal_for,
    source_of,
    unused,
)
from connector.imports.draft_sample import (
    SAMPLE_BYTES,
    Sample,
    parse_s3_url,
    read_local_sample,
    read_s3_sample,
)
from connector.imports.model import ImportProfilesGoal
from connector.sources import S3Credentials

_EXAMPLES = """\
examples:
  connector draft exports/customers-2026-11-01.csv > goals/customers.yaml
      a whole connection file from a local sample (set its storage and bucket)
  connector draft s3://crm-exports/daily/customers-2026-11-01.csv --connection crm
      a goal to paste under `goals:` in crm's file; the sample is read with
      crm's storage settings
  connector draft big.csv.gz --sample-mib 16
      look at more of a large file (gzip is inflated up to the same size)
"""


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `connector draft` on the top-level command parser."""
    description = (
        "Draft an import-profiles goal from a sample file: encoding and byte-order mark, "
        "field separator, quote, header, decimal comma, multi-value separator, date and "
        "date-time formats (ambiguous ones are marked CHECK with examples), a likely "
        "identifier column, and one `set` mapping per column with its type. Only the first "
        "MiB of the file are read (--sample-mib). Without --connection the output is a whole "
        "connection file; with it, a goal to paste at the end of that connection's `goals:` "
        "list."
    )
    parser = commands.add_parser(
        "draft",
        help="draft an import-profiles goal from a sample file (local or s3://)",
        description=textwrap.fill(description, 80),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=draft)
    parser.add_argument("sample", metavar="SAMPLE", help="a local path or s3://BUCKET/KEY")
    parser.add_argument(
        "--connection",
        metavar="ID",
        help="read s3:// samples with this connection's storage settings and print a goal "
        "for its file",
    )
    parser.add_argument(
        "--sample-mib",
        type=int,
        default=SAMPLE_BYTES >> 20,
        metavar="N",
        help=f"MiB of the file to read (default {SAMPLE_BYTES >> 20})",
    )


def draft(app: App, args: argparse.Namespace) -> int:
    if args.sample_mib < 1:
        raise ConnectorError("--sample-mib must be at least 1")
    workspace = _workspace(app, required=args.connection is not None)
    connection = workspace.connection(args.connection) if workspace and args.connection else None
    sample = _read(args.sample, args.sample_mib << 20, connection)
    result = sniff(sample.data, truncated=sample.truncated, name=sample.name)
    prefix, files = source_of(sample)
    bucket, bucket_note = _bucket(sample, connection)
    taken = {goal.name for goal in connection.goals} if connection else set()
    prop = match_property_of(result)
    matches = [
        (goal.match.property, goal.match.normalize)
        for other in (workspace.connections.values() if workspace else ())
        for goal in other.goals
        if isinstance(goal, ImportProfilesGoal)
    ]
    goal_draft = GoalDraft(
        name=goal_name_of(files, taken),
        bucket=bucket,
        prefix=prefix,
        files=files,
        result=result,
        sample=sample,
        bucket_note=bucket_note,
        normalize=existing_normalize(matches, prop),
        objectives=tuple(connection.objectives) if connection else (),
    )
    if connection is not None and workspace is not None:
        file_name = workspace.files[connection.id].name
        sys.stdout.write(render_goal_for(goal_draft, connection.id, file_name))
    else:
        goals_dir_path = app.settings.goals_dir
        ids = set(workspace.connections) if workspace else set()
        if goals_dir_path.is_dir():  # so "save as goals/ID.yaml" never overwrites a file
            ids |= {path.stem for path in goals_dir_path.iterdir()}
        connection_id = unused(goal_draft.name, ids)
        sys.stdout.write(
            render_connection(goal_draft, connection_id, goals_dir=str(goals_dir_path))
        )
    return 0


def _workspace(app: App, *, required: bool) -> Workspace | None:
    """The goals folder; without --connection a broken or missing one only loses name checks."""
    if required:
        return app.workspace
    try:
        return app.workspace
    except ConfigError:
        return None


def _read(location: str, limit: int, connection: Connection | None) -> Sample:
    s3_location = parse_s3_url(location)
    if s3_location is None:
        return read_local_sample(Path(location), limit)
    credentials = credentials_of(connection) if connection else S3Credentials()
    bucket, key = s3_location
    return asyncio.run(read_s3_sample(credentials, bucket, key, limit))


def _bucket(sample: Sample, connection: Connection | None) -> tuple[str, str]:
    """The source bucket: the sample's own, else one of the connection's, else a placeholder."""
    if sample.bucket is not None:
        return sample.bucket, ""
    buckets = [
        goal.source.bucket
        for goal in (connection.goals if connection else ())
        if isinstance(goal, ImportProfilesGoal | ImportGroupsGoal)
    ]
    if buckets:
        return buckets[0], "CHECK: the bucket of this connection's other import goal"
    return PLACEHOLDER_BUCKET, "CHECK: the bucket (and prefix) the files arrive in"


__all__ = ["add_command", "draft"]
