"""Argument parsing and dispatch; every command returns its exit code.

Exit codes: 0 success, 1 failure, 2 wrong usage, 3 partial (some rows rejected).
Operator mistakes end in one clear message and exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from connector import __version__
from connector.app import App
from connector.cli import inspect, operate, schema_command
from connector.cli import store as store_commands
from connector.cli.draft_command import add_command as add_draft_command
from connector.cli.output import fail
from connector.errors import ConfigError, ConnectorError
from connector.gc_tuning import tune_garbage_collector
from connector.logging import configure_logging
from connector.redaction import redact_text

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
Handler = Callable[[App, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 -- one flat list of commands
    parser = argparse.ArgumentParser(
        prog="connector",
        description="Sync customer profiles two ways between S3 and a local profile store.",
    )
    parser.add_argument("--version", action="version", version=f"connector {__version__}")
    parser.add_argument("--config", type=Path, help="settings YAML file (or $CONNECTOR_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("validate", operate.validate, "check every file in the goals folder")

    schema = command(
        "schema",
        schema_command.schema,
        "print the JSON Schema of a connection file, for YAML editors (see README)",
    )
    schema.add_argument(
        "--segments", action="store_true", help="the schema of segments.yaml instead"
    )

    scan = command("scan", operate.scan, "list the files an import goal matches, with their state")
    scan.add_argument("connection")
    scan.add_argument("goal")

    preview = command("preview", operate.preview, "show how the first rows of a file parse and map")
    preview.add_argument("connection")
    preview.add_argument("goal")
    preview.add_argument("--file", dest="key", help="object key (default: the first matching file)")
    preview.add_argument("--rows", type=int, default=5, help="rows to show (default 5)")
    add_draft_command(commands)

    run = command("run", operate.run, "run a connection (or one goal) now, in the foreground")
    run.add_argument("connection")
    run.add_argument("--goal", help="run only this goal")
    run.add_argument(
        "--dry-run", action="store_true", help="report what would change, write nothing"
    )
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument(
        "--verbose",
        action="store_true",
        help="name each file the run skipped, and why (unchanged, before the window, no match)",
    )

    daemon = command("daemon", operate.daemon, "run every enabled connection on its schedule")
    daemon.epilog = (
        "Prometheus metrics: set metrics.listen (HOST:PORT) in the settings, or "
        "CONNECTOR_METRICS__LISTEN, and scrape http://HOST:PORT/metrics (off by default)."
    )

    history = command("history", inspect.history, "show the run history")
    history.add_argument("connection", nargs="?")
    history.add_argument("--json", action="store_true", help="one JSON object a line")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--run", type=int, dest="run_id", help="one run, with its rejected rows")

    schedule = command("schedule", operate.schedule, "show the next fire times of each schedule")
    schedule.add_argument("connection", nargs="?")
    schedule.add_argument("--count", type=int, default=5)

    segments = command("segments", inspect.segments, "list segments with their member counts")
    segments.add_argument("--json", action="store_true")

    profiles = commands.add_parser("profiles", help="look at profiles")
    profile_commands = profiles.add_subparsers(
        dest="profiles_command", required=True, metavar="ACTION"
    )
    get = profile_commands.add_parser("get", help="one profile by id")
    get.set_defaults(handler=inspect.profile_get)
    get.add_argument("id")
    get.add_argument("--json", action="store_true")
    find = profile_commands.add_parser("find", help="profiles with a property value")
    find.set_defaults(handler=inspect.profile_find)
    find.add_argument("property")
    find.add_argument("value")
    find.add_argument("--json", action="store_true")
    dump = profile_commands.add_parser("dump", help="every profile")
    dump.set_defaults(handler=inspect.profile_dump)
    dump.add_argument("--json", action="store_true", help="JSON lines, one profile a line")

    groups = commands.add_parser("groups", help="look at groups")
    group_commands = groups.add_subparsers(dest="groups_command", required=True, metavar="ACTION")
    group_get = group_commands.add_parser("get", help="one group with its members")
    group_get.set_defaults(handler=inspect.group_get)
    group_get.add_argument("type")
    group_get.add_argument("id")
    group_get.add_argument("--json", action="store_true")

    store_commands.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        app = App.from_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_FAILURE
    configure_logging(app.settings.log_format, app.settings.log_level)
    tune_garbage_collector()
    handler: Handler = args.handler
    try:
        return handler(app, args)
    except ConfigError as error:
        for problem in error.problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_FAILURE
    except (ConnectorError, KeyError) as error:
        fail(redact_text(str(error.args[0]) if isinstance(error, KeyError) else str(error)))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        app.close()
