"""How the daemon notices edited goal files: each file's modification time and size."""

from __future__ import annotations

from pathlib import Path

from connector.config.workspace import goal_files

__all__ = ["Snapshot", "goal_files_snapshot"]

Snapshot = dict[Path, tuple[int, int]]


def goal_files_snapshot(goals_dir: Path) -> Snapshot:
    """Each goal file's (mtime in ns, size); an unreadable folder or file is left out."""
    try:
        files = goal_files(goals_dir)
    except OSError:
        return {}
    snapshot: Snapshot = {}
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        snapshot[path] = (stat.st_mtime_ns, stat.st_size)
    return snapshot
