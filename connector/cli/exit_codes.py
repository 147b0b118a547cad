"""The exit codes of every `connector` command: one table, for scripts and for people.

The same table is printed by `connector --help` and in the README's command line section.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `connector` process tells its caller."""

    OK = 0
    """The command did what was asked."""
    FAILED = 1
    """A run (or the work of a command) failed: S3, the store or a file; see the message."""
    USAGE = 2
    """Wrong usage or configuration: bad arguments, an invalid goal or settings file."""
    PARTIAL = 3
    """A run finished, but some rows were rejected: `connector history --run ID` lists them."""
    NOT_FOUND = 4
    """What was asked for does not exist: a connection, goal, run, profile, group or store."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT)."""


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "ok",
    ExitCode.FAILED: "run failed (S3, store or file error)",
    ExitCode.USAGE: "usage or configuration error",
    ExitCode.PARTIAL: "partial: the run rejected some rows",
    ExitCode.NOT_FOUND: "not found (connection, goal, run, profile, group, store)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_code_table() -> str:
    """The table as `connector --help` prints it."""
    return "exit codes:\n" + "".join(
        f"  {int(code):<5}{meaning}\n" for code, meaning in MEANINGS.items()
    )
