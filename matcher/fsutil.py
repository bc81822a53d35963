"""Atomic file writes: a reader sees the old file or the new one, never half of either.

A written file gets the mode a plain ``open(path, "w")`` would give it (0666 less the umask),
or keeps the mode of the file it replaces; a folder moved into place gets 0777 less the umask.
``tempfile`` creates its files 0600 and its folders 0700, which would make every output private
to its writer even where staff share them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # the only portable way to read it is to set it and set it back
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write in parts; it replaces `path` when the block ends without an
    error (a large file need not be built in memory first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_bytes(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_text(path: str | Path, text: str) -> None:
    atomic_bytes(path, text.encode("utf-8"))


def atomic_npy(path: str | Path, arr: np.ndarray) -> None:
    """Save with np.save (no pickles) atomically."""
    with atomic_file(path) as fh:  # straight to the file: no second copy of the array in memory
        np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)


def replace_dir(tmp_dir: str | Path, final_dir: str | Path) -> None:
    """Move a fully written folder into place, replacing an older one.

    The old folder is renamed aside first and removed after, so at every instant either the
    old or the new complete folder is at `final_dir` (apart from the two renames)."""
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    tmp_dir.chmod(0o777 & ~current_umask())
    old = final_dir.with_name(final_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    if old.exists():
        shutil.rmtree(old)
