"""The history concern of the store: runs, their counts and their rejected rows.

What it guarantees: a run is recorded as running before it does anything
and finished with its status and counts; a run whose process died is
marked interrupted when its connection's lock is taken over
(`connector.storage.locks`). Rejected rows are kept up to a limit per run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime

from connector.limits import MAX_REJECTS_STORED
from connector.storage.records import RowReject, RunCounts, RunRecord, RunStatus, Trigger


class RunHistory(ABC):
    """Runs of connections, newest first, with what they did and which rows they refused."""

    @abstractmethod
    def start_run(
        self, connection: str, goal: str | None, trigger: Trigger, *, dry_run: bool = False
    ) -> RunRecord: ...

    @abstractmethod
    def finish_run(
        self, run_id: int, status: RunStatus, counts: RunCounts, error: str | None = None
    ) -> RunRecord: ...

    @abstractmethod
    def add_rejects(self, run_id: int, rejects: Iterable[RowReject]) -> None: ...

    @abstractmethod
    def list_runs(
        self, connection: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> list[RunRecord]:
        """The latest runs first; with `since` (aware), only those started at or after it."""

    @abstractmethod
    def get_run(self, run_id: int) -> RunRecord | None: ...

    @abstractmethod
    def run_rejects(self, run_id: int, *, limit: int = MAX_REJECTS_STORED) -> list[RowReject]: ...


def interruption(connection: str, holder: str, ended_at: object) -> tuple[object, ...]:
    """The parameters of both backends' `UPDATE runs SET status, ended_at, error WHERE
    connection AND status`: the running runs of `holder` (`host:pid`), whose process
    stopped before they finished, become interrupted."""
    return (
        str(RunStatus.INTERRUPTED),
        ended_at,
        f"the process running it ({holder}) stopped before it finished",
        connection,
        str(RunStatus.RUNNING),
    )
