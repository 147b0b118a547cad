"""`connector schema`: the JSON Schema of a connection file (or of segments.yaml), for editors."""

from __future__ import annotations

import argparse
import sys

from connector.app import App
from connector.cli.exit_codes import ExitCode
from connector.config.schema import connection_schema, render, segments_schema


def schema(app: App, args: argparse.Namespace) -> int:
    """Print the schema the goal files are checked against, as JSON on stdout (no settings used)."""
    sys.stdout.write(render(segments_schema() if args.segments else connection_schema()))
    return ExitCode.OK
