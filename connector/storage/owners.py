"""Who holds a run lock or ran a run: `host:pid`, and whether that process still lives.

Both stores name processes this way, so a history shared by several daemons
says which one ran what, and a lock left by a dead process can be taken over.
"""

from __future__ import annotations

import os
import socket


def default_owner() -> str:
    """This process as a lock owner: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(owner: str) -> bool:
    """Whether a lock owner `host:pid` still runs; owners on other hosts are assumed alive."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
