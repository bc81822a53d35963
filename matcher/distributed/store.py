"""An embedding cache in a folder that every machine of a cluster mounts (NFS, a cloud disk).

The single-machine cache is one SQLite file in WAL mode, which needs shared memory between its
writers and so must not live on a network file system. Here every write is a new, immutable
segment file, ``<folder>/<model>/<kind>/<random>.npz`` holding ``keys`` (n, 16) uint8 and
``vecs`` (n, dim) float32, written to a temporary name and renamed into place. Readers only ever
see whole segments, any number of processes on any number of machines can write at once, and an
interrupted run keeps every segment it finished. The API is :class:`EmbeddingCache`'s
(``get_many``/``put_many``/``count``/``close``), so :class:`CachedEncoder` works over either.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher.fsutil import atomic_bytes

SEGMENT_SUFFIX = ".npz"
OPEN_SEGMENTS = 64  # segments whose vectors a reader keeps in memory (least recently used out)


class FolderEmbeddingCache:
    """Embeddings keyed by (model, kind, text key) in immutable segment files under ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._where: dict[tuple[str, str], dict[bytes, tuple[Path, int]]] = {}
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._open: OrderedDict[Path, NDArray[np.float32]] = OrderedDict()

    def get_many(self, model: str, kind: str, keys: Sequence[bytes]) -> dict[bytes, NDArray[np.float32]]:
        with self._lock:
            for _attempt in range(2):
                where = self._index(model, kind)
                if any(k not in where for k in keys):
                    where = self._index(model, kind, refresh=True)  # another worker may have written since
                found: dict[bytes, NDArray[np.float32]] = {}
                stale = False
                for key in keys:
                    loc = where.get(key)
                    if loc is not None and key not in found:
                        vecs = self._vectors(loc[0])
                        if vecs is None:
                            stale = True  # the segment was compacted away: list the folder afresh
                        else:
                            found[key] = vecs[loc[1]]
                if not stale:
                    break
                self._where.pop((model, kind), None)
                self._seen.pop((model, kind), None)
            return found

    def put_many(self, model: str, kind: str, keys: Sequence[bytes], vecs: NDArray[np.float32]) -> None:
        if not len(keys):
            return
        arr_keys = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1)
        buf = io.BytesIO()
        np.savez(buf, keys=arr_keys, vecs=np.ascontiguousarray(vecs, dtype=np.float32))
        path = self._dir(model, kind) / f"{uuid.uuid4().hex}{SEGMENT_SUFFIX}"
        atomic_bytes(path, buf.getvalue())
        with self._lock:
            where = self._where.get((model, kind))
            if where is not None:
                self._seen[(model, kind)].add(path.name)
                for row, key in enumerate(keys):
                    where.setdefault(bytes(key), (path, row))

    def count(self, model: str | None = None) -> int:
        """Distinct texts cached (for one model, or all)."""
        total = 0
        for model_dir in sorted(self.folder.iterdir()) if self.folder.exists() else ():
            if model is not None and model_dir.name != model_slug(model):
                continue
            for kind_dir in (d for d in model_dir.iterdir() if d.is_dir()):
                keys = set()
                for seg in kind_dir.glob(f"*{SEGMENT_SUFFIX}"):
                    with np.load(seg, allow_pickle=False) as z:
                        keys.update(bytes(k) for k in z["keys"])
                total += len(keys)
        return total

    def compact(self, model: str, kind: str) -> int:
        """Merge the segments of one model and kind into one file; returns how many were merged.

        Only the driver calls this, between jobs. A reader whose segment vanished re-reads the
        folder listing, so a concurrent reader still finds every key."""
        segs = sorted(self._dir(model, kind).glob(f"*{SEGMENT_SUFFIX}"))
        if len(segs) < 2:
            return 0
        keys, vecs, seen = [], [], set()
        for seg in segs:
            with np.load(seg, allow_pickle=False) as z:
                for k, v in zip(z["keys"], z["vecs"]):
                    if (b := bytes(k)) not in seen:
                        seen.add(b)
                        keys.append(b)
                        vecs.append(v)
        self.put_many(model, kind, keys, np.stack(vecs))
        for seg in segs:
            seg.unlink(missing_ok=True)
        with self._lock:
            self._where.pop((model, kind), None)
            self._seen.pop((model, kind), None)
            self._open.clear()
        return len(segs)

    def close(self) -> None:
        with self._lock:
            self._open.clear()

    def _dir(self, model: str, kind: str) -> Path:
        path = self.folder / model_slug(model) / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _index(self, model: str, kind: str, refresh: bool = False) -> dict[bytes, tuple[Path, int]]:
        where = self._where.setdefault((model, kind), {})
        seen = self._seen.setdefault((model, kind), set())
        if refresh or not seen:
            for seg in self._dir(model, kind).glob(f"*{SEGMENT_SUFFIX}"):
                if seg.name in seen:
                    continue
                try:
                    with np.load(seg, allow_pickle=False) as z:
                        seg_keys = z["keys"]
                except FileNotFoundError:  # compacted away between the listing and the read
                    continue
                seen.add(seg.name)
                for row, key in enumerate(seg_keys):
                    where.setdefault(bytes(key), (seg, row))
        return where

    def _vectors(self, seg: Path) -> NDArray[np.float32] | None:
        vecs = self._open.get(seg)
        if vecs is not None:
            self._open.move_to_end(seg)
            return vecs
        try:
            with np.load(seg, allow_pickle=False) as z:
                vecs = z["vecs"]
        except FileNotFoundError:
            return None
        self._open[seg] = vecs
        if len(self._open) > OPEN_SEGMENTS:
            self._open.popitem(last=False)
        return vecs


def model_slug(model: str) -> str:
    """A folder name for a model name ("minilm@128", "path:/models/x") that stays unique."""
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", model)[:60]
    return f"{safe}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def default_cache_folder() -> Path:
    """The shared cache's default place: ``$TECHMATCH_HOME/embeddings-shared`` (fine on one machine;
    on a cluster give a folder every node mounts)."""
    from matcher.settings import techmatch_home

    return techmatch_home() / "embeddings-shared"
