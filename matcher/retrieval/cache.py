"""Embedding cache: an SQLite file keyed by (model, kind, text hash).

Unchanged texts are never encoded twice, across runs and processes. SQLite in WAL mode lets
the CLI and the service share one cache file safely.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (model, kind, key)
) WITHOUT ROWID
"""


class EmbeddingCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def get_many(self, model: str, kind: str, keys: Sequence[bytes]) -> dict[bytes, NDArray[np.float32]]:
        found: dict[bytes, NDArray[np.float32]] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, vec FROM embeddings WHERE model = ? AND kind = ? AND key IN ({marks})",
                    (model, kind, *chunk),
                )
                for key, vec in rows:
                    found[bytes(key)] = np.frombuffer(vec, dtype=np.float32)
        return found

    def put_many(self, model: str, kind: str, keys: Sequence[bytes], vecs: NDArray[np.float32]) -> None:
        rows = [(model, kind, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vecs)]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
