"""`connector store ...`: moving a profile store between SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from connector.app import App
from connector.cli.exit_codes import ExitCode
from connector.cli.output import print_table
from connector.storage import open_store
from connector.storage.archive import copy_store
from connector.storage.postgres import is_postgres_url, redact_url


def copy(app: App, args: argparse.Namespace) -> int:
    """Copy every profile, group, run and ledger entry; the counts are checked after."""
    del app  # the stores come from --from and --to, not from the settings
    with ExitStack() as stack:
        source = stack.enter_context(open_store(args.source))
        target = stack.enter_context(open_store(args.target))
        counts = copy_store(source, target, force=args.force)
    sys.stdout.write(f"copied {_shown(args.source)} to {_shown(args.target)}\n")
    print_table(["what", "rows"], sorted(counts.items()))
    return ExitCode.OK


def _shown(database: str) -> str:
    return redact_url(database) if is_postgres_url(database) else database


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `connector store copy` on the top-level command parser."""
    store = commands.add_parser(
        "store",
        help="copy a profile store (SQLite, PostgreSQL)",
        description="Move a profile store between SQLite and PostgreSQL.",
        epilog="examples:\n  connector store copy --from connector.db "
        "--to postgresql://connector@db.internal/connector\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = store.add_subparsers(
        dest="store_command", required=True, metavar="ACTION", help="copy"
    )
    copy_parser = actions.add_parser(
        "copy",
        help="copy a whole store into an empty one",
        description="Copy profiles, groups, unique properties, the ledger, the run history "
        "and export state from one store to another, then check the counts. "
        "A store is a SQLite file path or a postgresql:// URL.",
        epilog="examples:\n"
        "  connector store copy --from /var/lib/connector/connector.db "
        "--to postgresql://connector@db.internal/connector\n"
        "  connector store copy --from postgresql://connector@db.internal/connector "
        "--to backup.db --force\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    copy_parser.set_defaults(handler=copy)
    copy_parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SRC",
        help="the store to copy: a SQLite file path or a postgresql:// URL",
    )
    copy_parser.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="DST",
        help="the store to fill: a SQLite file path or a postgresql:// URL",
    )
    copy_parser.add_argument(
        "--force", action="store_true", help="empty a target that holds data, then copy"
    )
