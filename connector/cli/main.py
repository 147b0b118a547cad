"""Argument parsing and dispatch; every command returns its exit code.

Exit codes are `ExitCode` (connector/cli/exit_codes.py), one table for every command.
Operator mistakes end in one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from connector import __version__
from connector.app import App
from connector.arrow_memory import choose_memory_pool
from connector.arrow_pandas import keep_pandas_out
from connector.cli import inspect, operate, schema_command
from connector.cli import store as store_commands
from connector.cli.draft_command import add_command as add_draft_command
from connector.cli.exit_codes import ExitCode, exit_code_table
from connector.cli.interrupts import leave, stopped_by_signal
from connector.cli.output import fail
from connector.cli.since import parse_since
from connector.errors import ConfigError, ConnectorError, NotFoundError
from connector.gc_tuning import tune_garbage_collector
from connector.logging import configure_logging

Handler = Callable[[App, argparse.Namespace], int]
READ_ONLY = "reads_store_only"
"""Set on the commands that only read the store: they never create one (issue 15 item 10)."""


def examples(*lines: str) -> str:
    """An epilog listing example command lines (kept as written by RawDescriptionHelpFormatter)."""
    return "examples:\n" + "".join(f"  {line}\n" for line in lines)


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 -- one flat list of commands
    parser = argparse.ArgumentParser(
        prog="connector",
        description="Sync customer profiles two ways between S3 and a local profile store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=examples("connector validate", "connector run crm --dry-run")
        + "\n"
        + exit_code_table(),
    )
    parser.add_argument("--version", action="version", version=f"connector {__version__}")
    parser.add_argument("--config", type=Path, help="settings YAML file (or $CONNECTOR_CONFIG)")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )

    def command(
        name: str, handler: Handler, help_text: str, *, example: Sequence[str] = ()
    ) -> argparse.ArgumentParser:
        return _subcommand(commands, name, help_text, example, handler=handler)

    command(
        "validate",
        operate.validate,
        "check every file in the goals folder",
        example=["connector validate", "connector --config /etc/connector/settings.yaml validate"],
    )

    schema = command(
        "schema",
        schema_command.schema,
        "print the JSON Schema of a connection file, for YAML editors (see README)",
        example=["connector schema > goals/connection.schema.json", "connector schema --segments"],
    )
    schema.add_argument(
        "--segments", action="store_true", help="the schema of segments.yaml instead"
    )

    scan = command(
        "scan",
        operate.scan,
        "list the files an import goal matches, with their state",
        example=["connector scan crm nightly-crm"],
    )
    scan.add_argument("connection", help="connection id (the `id` of a goals file)")
    scan.add_argument("goal", help="name of an import goal of that connection")

    preview = command(
        "preview",
        operate.preview,
        "show how the first rows of a file parse and map",
        example=[
            "connector preview crm nightly-crm",
            "connector preview crm nightly-crm --file in/customers-2026-12-01.csv --rows 10",
        ],
    )
    preview.add_argument("connection", help="connection id (the `id` of a goals file)")
    preview.add_argument("goal", help="name of an import goal of that connection")
    preview.add_argument("--file", dest="key", help="object key (default: the first matching file)")
    preview.add_argument("--rows", type=int, default=5, help="rows to show (default 5)")
    add_draft_command(commands)

    run = command(
        "run",
        operate.run,
        "run a connection (or one goal) now, in the foreground",
        example=["connector run crm", "connector run crm --goal nightly-crm --dry-run"],
    )
    run.add_argument("connection", help="connection id (the `id` of a goals file)")
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

    daemon = command(
        "daemon",
        operate.daemon,
        "run every enabled connection on its schedule",
        example=["connector daemon", "connector --config /etc/connector/settings.yaml daemon"],
    )
    daemon.description = (
        "Run every enabled connection on its schedule. Prometheus metrics: set "
        "metrics.listen (HOST:PORT) in the settings, or CONNECTOR_METRICS__LISTEN, and scrape "
        "http://HOST:PORT/metrics (off by default)."
    )

    history = command(
        "history",
        inspect.history,
        "show the run history, latest first",
        example=["connector history crm --since 3d", "connector history --run 42 --json"],
    )
    history.set_defaults(**{READ_ONLY: True})
    history.add_argument(
        "connection", nargs="?", help="only this connection's runs (default: every connection)"
    )
    history.add_argument("--json", action="store_true", help="one JSON object a line")
    history.add_argument(
        "--limit", type=_positive, default=20, help="at most N runs (default 20)", metavar="N"
    )
    history.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="runs started since WHEN: an ISO date or time (UTC unless it has an offset), "
        "or a span back from now such as 90m, 2h, 3d, 1w",
    )
    history.add_argument(
        "--run", type=int, dest="run_id", metavar="ID", help="one run, with its rejected rows"
    )

    schedule = command(
        "schedule",
        operate.schedule,
        "show the next fire times of each schedule",
        example=["connector schedule", "connector schedule crm --count 10"],
    )
    schedule.add_argument(
        "connection", nargs="?", help="only this connection (default: every connection)"
    )
    schedule.add_argument("--count", type=int, default=5, help="fire times to show (default 5)")

    segments = command(
        "segments",
        inspect.segments,
        "list segments with their member counts",
        example=["connector segments", "connector segments --json"],
    )
    segments.set_defaults(**{READ_ONLY: True})
    segments.add_argument("--json", action="store_true", help="one JSON object a line")

    profiles = _subcommand(  # a command made of actions: they carry the handlers
        commands,
        "profiles",
        "look at profiles",
        ["connector profiles find email ann@example.com", "connector profiles dump --json"],
    )
    profile_commands = profiles.add_subparsers(
        dest="profiles_command", required=True, metavar="ACTION", help="get, find or dump"
    )
    get = _action(
        profile_commands,
        "get",
        inspect.profile_get,
        "one profile by id",
        ["connector profiles get 0190c3a1b2c3d4e5 --json"],
    )
    get.add_argument("id", help="the profile's id (see `profiles find`)")
    get.add_argument("--json", action="store_true", help="one JSON object")
    find = _action(
        profile_commands,
        "find",
        inspect.profile_find,
        "profiles with a property value",
        [
            "connector profiles find email ann@example.com",
            "connector profiles find tier gold --json",
        ],
    )
    find.add_argument("property", help="property name, e.g. email")
    find.add_argument("value", help="the value to look for (one of a multi-valued property's)")
    find.add_argument("--json", action="store_true", help="one JSON object a line")
    dump = _action(
        profile_commands,
        "dump",
        inspect.profile_dump,
        "every profile",
        ["connector profiles dump --json > profiles.jsonl"],
    )
    dump.add_argument("--json", action="store_true", help="JSON lines, one profile a line")

    groups = _subcommand(
        commands, "groups", "look at groups", ["connector groups get household H1"]
    )
    group_commands = groups.add_subparsers(
        dest="groups_command", required=True, metavar="ACTION", help="get"
    )
    group_get = _action(
        group_commands,
        "get",
        inspect.group_get,
        "one group with its members",
        ["connector groups get household H1", "connector groups get company ACME --json"],
    )
    group_get.add_argument("type", help="group type, as in the import-groups goal (e.g. household)")
    group_get.add_argument("id", help="the group's id")
    group_get.add_argument("--json", action="store_true", help="one JSON object")

    store_commands.add_commands(commands)
    return parser


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _subcommand(
    parent: Subcommands,
    name: str,
    help_text: str,
    example: Sequence[str],
    **defaults: object,
) -> argparse.ArgumentParser:
    """A command or an action: its help text is its description, its examples the epilog."""
    sub = parent.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=examples(*example) if example else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if defaults:
        sub.set_defaults(**defaults)
    return sub


def _action(
    actions: Subcommands, name: str, handler: Handler, help_text: str, example: Sequence[str]
) -> argparse.ArgumentParser:
    """A read-only action under `profiles` or `groups`."""
    return _subcommand(actions, name, help_text, example, handler=handler, **{READ_ONLY: True})


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """The `connector` command: its exit code (see ExitCode)."""
    code = _command(argv)
    if stopped_by_signal():
        leave(code)
    return code


def _usage(error: ConfigError) -> int:
    """Each mistake of an invalid configuration on its own line: the operator fixes them all."""
    for problem in error.problems:
        sys.stderr.write(f"{problem}\n")
    return ExitCode.USAGE


def _command(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        app = App.from_config(args.config, create_store=not getattr(args, READ_ONLY, False))
    except ConfigError as error:
        return _usage(error)
    configure_logging(app.settings.log_format, app.settings.log_level)
    tune_garbage_collector()
    choose_memory_pool()
    keep_pandas_out()
    handler: Handler = args.handler
    try:
        return handler(app, args)
    except ConfigError as error:
        return _usage(error)
    except NotFoundError as error:
        fail(str(error))
        return ExitCode.NOT_FOUND
    except ConnectorError as error:
        fail(str(error))
        return ExitCode.FAILED
    except KeyboardInterrupt:
        fail("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    finally:
        app.close()
