"""The naive stack: what a user hacks together in an afternoon, to compare techmatch against.

    stack = NaiveStack(model_dir_or_model, texts, partner_ids, doc_embeddings)
    stack.match_partners("a technology need", k=10)   -> list[(partner_id, score)]

* dense: `SentenceTransformer(model_dir).encode(query)` then exact cosine against the whole
  precomputed (n_docs, dim) document matrix with numpy;
* lexical: `rank_bm25.BM25Okapi` over whitespace tokens (jieba words for Chinese);
* fusion by hand: reciprocal-rank fusion (k=60) of the two full rankings, or min-max;
* partner score = its best capability's fused score.

Nothing is cached between queries (a stored demand is encoded again each time), which is
what such a script does. The document embeddings are handed in, so both stacks skip the
document encoding in benchmarks (they come from techmatch's embedding cache; same model).

`bm25_matrix` is benchmark plumbing, not part of the naive stack: a vectorised evaluation of
BM25Okapi's own formula, idf table and term counts, so quality over thousands of queries does
not take an hour; `check_bm25_matrix` asserts it equals `BM25Okapi.get_scores`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PREFIXES = {"e5-multilingual-small": ("query: ", "passage: ")}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def tokenize(text: str) -> list[str]:
    """Lower-cased whitespace split; jieba words when the text has Chinese characters."""
    if _CJK.search(text):
        import jieba

        return [w for w in jieba.lcut(text.lower()) if w.strip()]
    return text.lower().split()


def rrf(scores: np.ndarray, k: int = 60) -> np.ndarray:
    ranks = np.empty(len(scores))
    ranks[np.argsort(-scores)] = np.arange(1, len(scores) + 1)
    return 1.0 / (k + ranks)


def minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = scores.min(), scores.max()
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)


class NaiveStack:
    def __init__(
        self,
        model,
        texts: Sequence[str],
        partner_ids: Sequence[str],
        doc_embeddings: np.ndarray,
        *,
        query_prefix: str = "",
        max_seq_length: int | None = 256,
        fusion: str = "rrf",
    ) -> None:
        """model: a sentence-transformers folder, or an already loaded SentenceTransformer."""
        from rank_bm25 import BM25Okapi

        if isinstance(model, (str, Path)):
            from sentence_transformers import SentenceTransformer  # torch: seconds to import

            model = SentenceTransformer(str(model), device="cpu")
        self.model = model
        if max_seq_length:
            self.model.max_seq_length = max_seq_length  # the truncation the document embeddings had
        self.query_prefix = query_prefix
        self.emb = np.asarray(doc_embeddings, dtype=np.float32)  # (n_docs, dim), L2-normalised
        self.bm25 = BM25Okapi([tokenize(t) for t in texts])
        self.partners, self.partner_of_doc = np.unique(np.asarray(partner_ids), return_inverse=True)
        self.fusion = fusion

    def match_partners(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        return self.match_partners_timed(query, k)[0]

    def match_partners_timed(self, query: str, k: int = 10) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """Ranked (partner_id, score) and the seconds spent in each stage."""
        t0 = time.perf_counter()
        q = self.model.encode([self.query_prefix + query], normalize_embeddings=True, show_progress_bar=False)[0]
        t1 = time.perf_counter()
        dense = self.emb @ q
        t2 = time.perf_counter()
        lexical = self.bm25.get_scores(tokenize(query))
        t3 = time.perf_counter()
        ranked = self.fuse_and_rank(dense, lexical, k)
        t4 = time.perf_counter()
        return ranked, {"encode": t1 - t0, "dense": t2 - t1, "bm25": t3 - t2, "fuse_partners": t4 - t3}

    def fuse_and_rank(self, dense: np.ndarray, lexical: np.ndarray, k: int, fusion: str | None = None):
        fusion = fusion or self.fusion
        if fusion == "rrf":
            fused = rrf(dense) + rrf(lexical)
        elif fusion == "minmax":
            fused = 0.5 * minmax(dense) + 0.5 * minmax(lexical)
        elif fusion == "dense":
            fused = dense.astype(np.float64)
        elif fusion == "bm25":
            fused = lexical.astype(np.float64)
        else:
            raise ValueError(f"unknown fusion '{fusion}': rrf, minmax, dense or bm25")
        best = np.full(len(self.partners), -np.inf)
        np.maximum.at(best, self.partner_of_doc, fused)  # partner = its best capability
        top = np.argsort(-best)[:k]
        return [(str(self.partners[i]), float(best[i])) for i in top]


# -- benchmark plumbing: fast exact BM25Okapi scores for quality runs ---------------------------
def bm25_matrix(bm25, queries: Sequence[list[str]]):
    """(n_queries, n_docs) scipy CSR of BM25Okapi scores, from the fitted object's own state
    (idf with its epsilon floor, term frequencies, document lengths, k1, b, avgdl)."""
    import scipy.sparse as sp

    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    doc_len = np.asarray(bm25.doc_len, dtype=np.float64)
    norm = bm25.k1 * (1 - bm25.b + bm25.b * doc_len / bm25.avgdl)
    for d, freqs in enumerate(bm25.doc_freqs):
        for word, tf in freqs.items():
            j = vocab.setdefault(word, len(vocab))
            rows.append(d)
            cols.append(j)
            vals.append(tf * (bm25.k1 + 1) / (tf + norm[d]))
    w = sp.csr_matrix((vals, (rows, cols)), shape=(len(bm25.doc_freqs), len(vocab)))
    idf = np.zeros(len(vocab))
    for word, j in vocab.items():
        idf[j] = bm25.idf.get(word) or 0.0
    qr, qc, qv = [], [], []
    for i, toks in enumerate(queries):
        for t in toks:  # repeated query words count again, as in get_scores
            j = vocab.get(t)
            if j is not None:
                qr.append(i)
                qc.append(j)
                qv.append(idf[j])
    q = sp.csr_matrix((qv, (qr, qc)), shape=(len(queries), len(vocab)))
    return (q @ w.T.tocsr()).tocsr()


def check_bm25_matrix(bm25, queries: Sequence[list[str]]) -> float:
    """Largest relative difference between `bm25_matrix` and `BM25Okapi.get_scores`."""
    fast = bm25_matrix(bm25, queries).toarray()
    worst = 0.0
    for i, q in enumerate(queries):
        ref = bm25.get_scores(q)
        worst = max(worst, float(np.max(np.abs(fast[i] - ref)) / max(float(np.max(np.abs(ref))), 1e-12)))
    return worst
