"""The locks concern of the store: one run of a connection at a time, one daemon per fire.

What it guarantees: while a process holds a connection's run lock, no other
process runs that connection; a lock whose holder died is taken over and
the dead holder's runs are marked interrupted. Several daemons sharing a
store each schedule every connection, and exactly one of them claims each
scheduled fire.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime


class RunLocks(ABC):
    """Run locks per connection, and claims of scheduled fires."""

    @abstractmethod
    def acquire_run_lock(self, connection: str, owner: str) -> None:
        """Take the connection's run lock or raise RunInProgressError naming the holder.

        A lock whose owner process is gone is taken over, and its run marked interrupted.
        """

    @abstractmethod
    def release_run_lock(self, connection: str, owner: str) -> None: ...

    def claim_fire(self, connection: str, fire_time: datetime, owner: str) -> bool:
        """Claim one scheduled fire of a connection; False when another daemon has it.

        Several daemons on one store each schedule every connection; the one
        whose claim lands runs that fire. A SQLite file has one daemon: always True.
        """
        return True


def already_running(connection: str, started: str) -> str:
    """The message for a connection whose run lock another process holds."""
    return f"connection {connection!r} is already running ({started}); wait for it to finish"
