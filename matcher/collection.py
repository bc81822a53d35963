"""A searchable, editable set of texts: embeddings in a vector index plus BM25 over tokens.

Rows are append-only; an edit removes the old row and appends a new one, a delete marks the
row dead everywhere (vector index, BM25 document frequencies, the alive mask), so a removed
record can never come back in results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .errors import MatcherError, NotFoundError
from .fsutil import atomic_npy, atomic_text
from .index import IndexParams, VectorIndex
from .lexical import BM25


@dataclass(frozen=True)
class Candidates:
    """Candidate rows for one query with both raw scores (arrays of equal length)."""

    rows: NDArray[np.int64]
    dense: NDArray[np.float32]  # cosine similarity
    lexical: NDArray[np.float32]  # raw BM25
    lexical_scale: float  # the query's maximum attainable BM25 score
    coverage: float  # share of query tokens known to the corpus vocabulary


class Collection:
    def __init__(self, dim: int, index: IndexParams | None = None) -> None:
        self.dim = dim
        self.index_params = index or IndexParams()
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.tokens: list[list[str]] = []
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._alive = np.zeros(0, dtype=bool)
        self.bm25 = BM25().fit_tokens([])
        self.index = VectorIndex(dim, self.index_params).build(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))

    # -- editing ---------------------------------------------------------------------------
    def add(self, ids: Sequence[str], tokens: Sequence[list[str]], vectors: NDArray[np.float32]) -> None:
        """Insert or replace records. vectors: (n, dim) float32 L2-normalised."""
        if len(ids) != len(tokens) or len(ids) != len(vectors):
            raise MatcherError("ids, tokens and vectors must have the same length")
        if len(set(ids)) != len(ids):
            raise MatcherError("duplicate ids in one add() call")
        if not len(ids):
            return
        if not self.ids:
            # First load: fit BM25 on the whole batch so avgdl reflects the corpus.
            self.bm25 = BM25().fit_tokens(list(tokens))
        else:
            self.remove([i for i in ids if i in self.row_of])
            self.bm25.partial_add(list(tokens))
        start = len(self.ids)
        rows = np.arange(start, start + len(ids), dtype=np.int64)
        self.ids.extend(ids)
        self.row_of.update({rid: int(r) for rid, r in zip(ids, rows)})
        self.tokens.extend(list(t) for t in tokens)
        self._vectors = np.vstack([self._vectors, np.asarray(vectors, dtype=np.float32)])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), dtype=bool)])
        if start == 0 and self.index_params.kind != "exact":
            self.index.build(self._vectors, rows)  # approximate indexes train on the data
        else:
            self.index.add(np.asarray(vectors, dtype=np.float32), rows)

    def remove(self, ids: Sequence[str]) -> None:
        missing = [i for i in ids if i not in self.row_of]
        if missing:
            raise NotFoundError(f"unknown id(s): {', '.join(missing[:10])}")
        rows = np.array([self.row_of.pop(i) for i in ids], dtype=np.int64)
        if not len(rows):
            return
        self._alive[rows] = False
        self.index.remove(rows)
        self.bm25.forget_rows(rows)
        for r in rows:
            self.tokens[r] = []

    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, rid: str) -> bool:
        return rid in self.row_of

    @property
    def vectors(self) -> NDArray[np.float32]:
        """(n_rows, dim) float32, dead rows included (use `alive`)."""
        return self._vectors

    @property
    def alive(self) -> NDArray[np.bool_]:
        return self._alive

    def vector(self, rid: str) -> NDArray[np.float32]:
        return self._vectors[self.row_of[rid]]

    # -- searching -------------------------------------------------------------------------
    def candidates(
        self,
        qvecs: NDArray[np.float32],
        qtokens: Sequence[list[str]],
        *,
        depth: int = 200,
        allowed: NDArray[np.bool_] | None = None,
    ) -> list[Candidates]:
        """For each query, the union of its `depth` best rows by dense and by lexical score.

        qvecs: (nq, dim); allowed: optional (n_rows,) mask of rows that may be returned."""
        mask = self._alive if allowed is None else (self._alive & allowed)
        n_live = int(mask.sum())
        if n_live == 0:
            empty = np.zeros(0, np.float32)
            return [Candidates(np.zeros(0, np.int64), empty, empty, 1.0, 0.0) for _ in qtokens]
        depth = min(depth, n_live)
        dense_top = self._dense_top(qvecs, depth, mask if allowed is not None else None)
        lex = self.bm25.score_tokens(qtokens)
        if allowed is not None:
            lex = lex.multiply(sp.csr_matrix(mask.astype(np.float32))).tocsr()
        scales = self.bm25.max_scores(qtokens)
        coverage = self.bm25.coverage(qtokens)
        out = []
        for q in range(len(qtokens)):
            row = lex.getrow(q)
            lex_rows, lex_vals = row.indices, row.data
            if len(lex_rows) > depth:
                top = np.argpartition(-lex_vals, depth - 1)[:depth]
                lex_rows = lex_rows[top]
            rows = np.union1d(dense_top[q], lex_rows).astype(np.int64)
            rows = rows[mask[rows]]
            dense = self._vectors[rows] @ np.asarray(qvecs[q], dtype=np.float32)
            lexical = (
                np.asarray(row[:, rows].toarray()).ravel().astype(np.float32) if len(rows) else np.zeros(0, np.float32)
            )
            out.append(Candidates(rows, dense.astype(np.float32), lexical, float(scales[q]) or 1.0, float(coverage[q])))
        return out

    def _dense_top(
        self, qvecs: NDArray[np.float32], depth: int, mask: NDArray[np.bool_] | None
    ) -> list[NDArray[np.int64]]:
        if mask is None:
            _, ids = self.index.search(qvecs, depth)
            return [r[r >= 0] for r in ids]
        # Filtered: score only the allowed rows exactly (filters usually leave few rows).
        allowed_rows = np.flatnonzero(mask)
        scores = np.asarray(qvecs, dtype=np.float32) @ self._vectors[allowed_rows].T
        top = np.argpartition(-scores, min(depth, scores.shape[1]) - 1, axis=1)[:, :depth]
        return [allowed_rows[t] for t in top]

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_npy(folder / "vectors.npy", self._vectors)
        atomic_npy(folder / "alive.npy", self._alive)
        self.bm25.save(folder)
        self.index.save(folder)
        meta = {"dim": self.dim, "ids": self.ids, "tokens": self.tokens}
        atomic_text(folder / "collection.json", json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | Path) -> Collection:
        folder = Path(folder)
        meta = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
        self = cls.__new__(cls)
        self.dim = meta["dim"]
        self.ids = meta["ids"]
        self.tokens = meta["tokens"]
        self._vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        self._alive = np.load(folder / "alive.npy", allow_pickle=False)
        self.row_of = {rid: r for r, rid in enumerate(self.ids) if self._alive[r]}
        self.bm25 = BM25.load(folder)
        self.index = VectorIndex.load(folder)
        self.index_params = self.index.params
        return self
