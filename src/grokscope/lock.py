"""One writer per run directory: an exclusive lock file, ``RUN/.lock``.

The lock is created atomically (``O_CREAT | O_EXCL``) and holds the owner's pid, host and
command as JSON; it is removed when the owner finishes. A lock whose process is gone (on this
host: a killed run) is stale and is taken over, with a message. ``train``, ``analyze`` and
``report`` take it, so sweep members (which train and analyse) do too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grokscope.errors import GrokscopeError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict | None:
    """The lock's contents, or None if it vanished; {} if it cannot be read (being written)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _create(path: Path, command: str) -> bool:
    """Create the lock file atomically; False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                   "since": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
    return True


@contextmanager
def run_lock(root: Path, command: str) -> Iterator[None]:
    """Hold ``root``'s lock for the duration; GrokscopeError naming the holder if another live
    process has it."""
    path = Path(root) / LOCK_NAME
    for _ in range(3):  # a stale lock is removed and the creation tried again
        if _create(path, command):
            break
        holder = _holder(path)
        if holder is None:
            continue
        here = holder.get("host") == socket.gethostname()
        if holder and here and not _alive(int(holder.get("pid", -1))):
            print(f"grokscope: taking over the stale lock of {root} (pid {holder.get('pid')}, "
                  f"{holder.get('command')}, since {holder.get('since')}: that process is gone)", file=sys.stderr)
            path.unlink(missing_ok=True)
            continue
        who = (f"{holder.get('command')} (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"
               if holder else "another process")
        raise GrokscopeError(f"{root} is in use by {who}; wait for it to finish, or stop it")
    else:
        raise GrokscopeError(f"could not lock {root}: its lock file keeps changing")
    try:
        yield
    finally:
        holder = _holder(path)
        if holder and holder.get("pid") == os.getpid():
            path.unlink(missing_ok=True)
