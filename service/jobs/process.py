"""Whether the process behind a worker id ("host:pid:...") or a pid is still running, on this host."""

from __future__ import annotations

import os
import socket
from collections.abc import Collection


def local_process_alive(worker: str, live_here: Collection[str]) -> bool | None:
    """True or False for a worker of this host (in this very process: whether `live_here` holds
    it, since several apps share one process in the tests); None when the worker is on another
    host or names no pid, so the caller judges by its lease or heartbeat instead."""
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    if int(pid_text) == os.getpid():
        return worker in live_here
    return pid_running(int(pid_text))


def pid_running(pid: int) -> bool:
    """Whether a process with this pid runs on this host (this very process included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: assume ours is still there
        return True
    return True
