"""Vector index over L2-normalised embeddings (inner product = cosine), backed by FAISS.

`exact` (a flat index) is the default; `hnsw` and `ivf` trade a little recall for speed on
large corpora. Ids are int64 row numbers chosen by the caller. Removal works on every kind:
flat and IVF remove for real, HNSW keeps a tombstone set and over-fetches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError, UnknownNameError
from matcher.fsutil import atomic_bytes, atomic_text

INDEX_KINDS = ("exact", "hnsw", "ivf")


@dataclass(frozen=True)
class IndexParams:
    kind: str = "exact"
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 256  # >= the engine's candidate depth (200): recall@200 0.985 at 42k, 0.97 at 200k
    nlist: int = 0  # 0: about 4 * sqrt(n) chosen at build time
    nprobe: int = 64  # real MiniLM vectors: recall@10 0.98 at 42k and 200k (32: 0.946 and 0.950)

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise UnknownNameError("index kind", self.kind, list(INDEX_KINDS))


SMALL_BATCH = 8  # up to this many queries are searched on the calling thread alone
_DEFAULT_THREADS: list[int] = []


def _faiss():
    import faiss  # lazily: importing faiss costs time that --help should not pay

    if not _DEFAULT_THREADS:
        _DEFAULT_THREADS.append(faiss.omp_get_max_threads())
    return faiss


@contextmanager
def _threads_for(n_queries: int) -> Iterator[None]:
    """One OpenMP thread for a few queries, all threads for batches; the caller's setting after.

    A single query gains nothing from threads, and on a busy machine waiting for the other
    threads costs more than the search (42k rows: 35 ms with 2 threads against 9 ms with one).
    The setting is per calling thread, so concurrent requests do not interfere. It is put back
    afterwards because torch shares the OpenMP runtime: left at one thread, the request's next
    query encoding ran single-threaded (a 300-character query 11 ms -> 17 ms)."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1 if n_queries <= SMALL_BATCH else _DEFAULT_THREADS[0])
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def inner_products(queries: NDArray[np.float32], matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    """(nq, n_rows) scores of every row for every query.

    A request's few queries go through FAISS's single-threaded SIMD loop, not BLAS: numpy's
    OpenBLAS runs a 42k-row product on two threads that keep spinning after it, and the
    free text encoded next by torch took 105 ms instead of 15 (measured in one process)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if len(queries) > SMALL_BATCH:
        return queries @ matrix.T
    faiss = _faiss()
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    out = np.empty((len(queries), len(matrix)), dtype=np.float32)
    for q in range(len(queries)):
        faiss.fvec_inner_products_ny(
            faiss.swig_ptr(out[q]), faiss.swig_ptr(queries[q]), faiss.swig_ptr(matrix), matrix.shape[1], len(matrix)
        )
    return out


class VectorIndex:
    def __init__(self, dim: int, params: IndexParams | None = None) -> None:
        self.dim = dim
        self.params = params or IndexParams()
        self._index = None
        self._deleted: set[int] = set()

    def build(self, vectors: NDArray[np.float32], ids: NDArray[np.int64]) -> VectorIndex:
        """vectors: (n, dim) float32 L2-normalised; ids: (n,) int64."""
        faiss = _faiss()
        vectors = _as_matrix(vectors, self.dim)
        p = self.params
        if p.kind == "exact":
            base = faiss.IndexFlatIP(self.dim)
        elif p.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = p.ef_construction
            base.hnsw.efSearch = p.ef_search
        else:
            nlist = p.nlist or max(1, int(4 * np.sqrt(max(len(vectors), 1))))
            nlist = min(nlist, max(1, len(vectors) // 39))  # FAISS wants ~39 points per list
            quantizer = faiss.IndexFlatIP(self.dim)
            base = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            base.train(vectors if len(vectors) else np.zeros((1, self.dim), np.float32))
            base.nprobe = min(p.nprobe, nlist)
        self._index = faiss.IndexIDMap2(base)
        self._deleted = set()
        if len(vectors):
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        return self

    def add(self, vectors: NDArray[np.float32], ids: NDArray[np.int64]) -> None:
        self._require()
        self._index.add_with_ids(_as_matrix(vectors, self.dim), np.asarray(ids, dtype=np.int64))
        self._deleted.difference_update(int(i) for i in ids)

    def remove(self, ids: NDArray[np.int64]) -> None:
        self._require()
        ids = np.asarray(ids, dtype=np.int64)
        if self.params.kind == "hnsw":
            self._deleted.update(int(i) for i in ids)
        else:
            self._index.remove_ids(ids)

    def __len__(self) -> int:
        return 0 if self._index is None else self._index.ntotal - len(self._deleted)

    def search(
        self, queries: NDArray[np.float32], k: int, subset: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Returns (nq, k) float32 scores and (nq, k) int64 ids, best first; id -1 pads.

        subset: optional ids to search among (the others are skipped inside FAISS)."""
        self._require()
        queries = _as_matrix(queries, self.dim)
        k = max(1, k)
        fetch = min(k + len(self._deleted), max(self._index.ntotal, 1))
        with _threads_for(len(queries)):
            scores, ids = self._search(queries, fetch, subset)
        if self._deleted:
            dead = np.isin(ids, np.fromiter(self._deleted, dtype=np.int64))
            ids = np.where(dead, -1, ids)
            scores = np.where(dead, -np.inf, scores)
            order = np.argsort(-scores, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        out_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_i = np.full((len(queries), k), -1, dtype=np.int64)
        n = min(k, ids.shape[1])
        out_s[:, :n], out_i[:, :n] = scores[:, :n], ids[:, :n]
        return out_s, out_i

    def _search(self, queries, fetch: int, subset: NDArray[np.int64] | None):
        if subset is None:
            return self._index.search(queries, fetch)
        faiss = _faiss()
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(subset, dtype=np.int64))
        if self.params.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector)
            params.efSearch = self.params.ef_search
        elif self.params.kind == "ivf":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self._index_nprobe())
        else:
            params = faiss.SearchParameters(sel=selector)
        return self._index.search(queries, fetch, params=params)

    def _index_nprobe(self) -> int:
        return int(_faiss().extract_index_ivf(self._index).nprobe)

    def save(self, folder: str | Path) -> None:
        """Writes index.faiss and index.json, each replaced atomically."""
        self._require()
        faiss = _faiss()
        folder = Path(folder)
        atomic_bytes(folder / "index.faiss", faiss.serialize_index(self._index).tobytes())
        meta = {"dim": self.dim, "params": self.params.__dict__, "deleted": sorted(self._deleted)}
        atomic_text(folder / "index.json", json.dumps(meta))

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        faiss = _faiss()
        folder = Path(folder)
        meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        self = cls(meta["dim"], IndexParams(**meta["params"]))
        data = np.frombuffer((folder / "index.faiss").read_bytes(), dtype=np.uint8)
        self._index = faiss.deserialize_index(data)
        self._deleted = set(meta["deleted"])
        return self

    def _require(self) -> None:
        if self._index is None:
            raise MatcherError("vector index is empty: call build() first")


def _as_matrix(x: NDArray[np.float32], dim: int) -> NDArray[np.float32]:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.shape[1] != dim:
        raise MatcherError(f"vectors have dimension {x.shape[1]}, index expects {dim}")
    return x
