"""Private copies of the live engine for background builds (the landscape), in the system's
temporary folder.

A build keeps its copy for as long as it runs (the loaded engine reads its files), on a daemon
thread; a process that exits or is killed mid-build never reaches the build's own cleanup, and
at 42k capabilities a copy is the whole index. So each copy is named after its process
(`techmatch-landscape-<pid>-...`): this process removes its open copies when it exits
normally, and every new copy first sweeps away the copies of processes of this host that are
gone. Copies made before they carried a pid are removed once a day old.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.jobs.process import pid_running

PREFIX = "techmatch-landscape-"
UNNAMED_STALE_SECONDS = 24 * 3600
_open: set[Path] = set()
_lock = threading.Lock()


@contextmanager
def snapshot_folder(root: str | Path | None = None) -> Iterator[Path]:
    """A new empty folder for one build's copy, removed when the block ends or the process
    exits; stale copies under `root` (the temporary folder by default) are swept first."""
    sweep(root)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
    with _lock:
        _open.add(path)
    try:
        yield path
    finally:
        with _lock:
            _open.discard(path)
        shutil.rmtree(path, ignore_errors=True)


def sweep(root: str | Path | None = None, *, now: float | None = None) -> list[Path]:
    """Remove the copies under `root` whose process is gone; returns what was removed."""
    now = time.time() if now is None else now
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        owner = path.name[len(PREFIX):].partition("-")[0]
        try:
            if owner.isdigit():
                gone = not pid_running(int(owner))
            else:
                gone = now - path.stat().st_mtime > UNNAMED_STALE_SECONDS
        except OSError:  # removed meanwhile by another process's sweep
            continue
        if gone and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@atexit.register
def _remove_open_copies() -> None:
    with _lock:
        for path in list(_open):
            shutil.rmtree(path, ignore_errors=True)
        _open.clear()
