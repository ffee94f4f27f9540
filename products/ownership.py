"""Leftovers of killed processes: who owns a lock or a staging folder, and is it still alive.

A staging folder records its owner (process id and host) in ``OWNER_FILE`` when it is made; a
later run on the same host may remove the folder once that process is gone. Folders without an
owner file, or owned on another host, are never judged dead: leaving a leftover is safe,
removing a live run's files is not.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

#: Name of the owner record inside a staging folder.
OWNER_FILE = ".owner.json"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_owned_dir(parent: Path, prefix: str) -> Path:
    """A new folder ``parent/<prefix>XXXX`` recording this process as its owner."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (path / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    return path


def owner_gone(path: Path) -> bool:
    """True when ``path`` records an owner on this host that no longer runs."""
    try:
        owner = json.loads((Path(path) / OWNER_FILE).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return host == socket.gethostname() and pid != os.getpid() and not process_alive(pid)
