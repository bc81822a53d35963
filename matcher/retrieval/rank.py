"""Fusion of dense and lexical evidence, and aggregation of capabilities into partners.

Pure functions of score arrays, so every choice here is measurable by `techmatch evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import UnknownNameError
from matcher.retrieval.collection import Candidates

FUSION_METHODS = ("convex", "rrf", "dense", "lexical")
AGGREGATIONS = ("max", "decay")


@dataclass(frozen=True)
class FusionParams:
    """How dense and lexical scores combine.

    convex: fused = (1 - w) * dense_norm + w * lexical_norm, where dense_norm is the cosine
    min-max scaled over the query's candidates, lexical_norm is BM25 divided by the query's
    best candidate BM25, and w = coverage * (lexical_weight for the query's other words,
    chinese_lexical_weight for its Chinese words, mixed by their shares): coverage (the share
    of query tokens the corpus knows), so a query in a language the corpus does not share
    leans on dense alone; Chinese words get less weight because BM25 over jieba's
    segmentation was measured to be weaker evidence on the Chinese tasks than BM25 over words
    on the English ones (docs/fit.md, "Fusion", where both weights were chosen).
    rrf: reciprocal-rank fusion with constant rrf_k. dense / lexical: one side only.
    """

    method: str = "convex"
    lexical_weight: float = 0.5
    chinese_lexical_weight: float = 0.3
    rrf_k: int = 60
    depth: int = 200  # candidates per side and query

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise UnknownNameError("fusion method", self.method, list(FUSION_METHODS))


@dataclass(frozen=True)
class AggregationParams:
    """How capability scores become a partner score.

    max: the partner's best capability. decay: best + sum over the next (top_m - 1) of
    decay^i * max(0, s_i - floor), where floor is the query's median candidate score; only
    capabilities clearly above the crowd add, and only a few, so a big institute's long tail
    cannot drown a small specialist's one excellent match.
    """

    method: str = "decay"
    top_m: int = 5
    decay: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in AGGREGATIONS:
            raise UnknownNameError("aggregation", self.method, list(AGGREGATIONS))


@dataclass(frozen=True)
class Fused:
    """Fused scores of one query's candidates; arrays aligned with `Candidates.rows`."""

    rows: NDArray[np.int64]
    score: NDArray[np.float32]
    dense_norm: NDArray[np.float32]
    lexical_norm: NDArray[np.float32]
    lexical_weight: float


def fuse(c: Candidates, params: FusionParams) -> Fused:
    n = len(c.rows)
    if n == 0:
        z = np.zeros(0, np.float32)
        return Fused(c.rows, z, z, z, 0.0)
    d = c.centred
    span = float(d.max() - d.min())
    dense_norm = (d - d.min()) / span if span > 1e-9 else np.ones(n, np.float32)
    lex_max = float(c.lexical.max())
    lexical_norm = c.lexical / lex_max if lex_max > 0 else np.zeros(n, np.float32)
    w = 0.0
    if params.method == "convex":
        w = lexical_weight(c, params) if lex_max > 0 else 0.0
        score = (1 - w) * dense_norm + w * lexical_norm
    elif params.method == "rrf":
        w = 0.5
        score = _rrf(d, params.rrf_k) + (_rrf(c.lexical, params.rrf_k) if lex_max > 0 else 0.0)
    elif params.method == "dense":
        score = np.asarray(d, dtype=np.float32).copy()
    else:
        w = 1.0
        score = c.lexical.copy()
    return Fused(
        c.rows, score.astype(np.float32), dense_norm.astype(np.float32), lexical_norm.astype(np.float32), float(w)
    )


def lexical_weight(c: Candidates, params: FusionParams) -> float:
    """The convex fusion's weight of lexical evidence for one query (see `FusionParams`)."""
    share = c.chinese_share
    return c.coverage * (params.lexical_weight * (1.0 - share) + params.chinese_lexical_weight * share)


def _rrf(scores: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return (1.0 / (k + ranks)).astype(np.float32)


def aggregate(
    fused: Fused, partner_of_row: NDArray[np.int64], params: AggregationParams
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Partner scores from one query's fused capability scores.

    partner_of_row: (n_rows,) int64 partner number of every collection row.
    Returns (partners, scores), best first."""
    if len(fused.rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    partners = partner_of_row[fused.rows]
    order = np.lexsort((-fused.score, partners))  # by partner, best capability first
    p_sorted, s_sorted = partners[order], fused.score[order]
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    best = s_sorted[starts]
    total = best.astype(np.float64)
    if params.method == "decay" and params.top_m > 1:
        floor = float(np.median(fused.score))
        position = np.arange(len(p_sorted)) - np.repeat(starts, np.diff(np.r_[starts, len(p_sorted)]))
        extra = (position >= 1) & (position < params.top_m)
        gain = np.where(extra, params.decay**position * np.maximum(0.0, s_sorted - floor), 0.0)
        total += np.add.reduceat(gain, starts)
    uniq = p_sorted[starts]
    rank = np.argsort(-total, kind="stable")
    return uniq[rank], total[rank].astype(np.float32)


def top_rows_of_partner(fused: Fused, partner_of_row: NDArray[np.int64], partner: int, n: int) -> NDArray[np.intp]:
    """Positions (into fused arrays) of the partner's n best capabilities, best first."""
    pos = np.flatnonzero(partner_of_row[fused.rows] == partner)
    return pos[np.argsort(-fused.score[pos], kind="stable")][:n]


def top_k(scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Positions of the k largest scores, best first."""
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def merge_terms(groups: Sequence[Sequence[str]], limit: int = 10) -> tuple[str, ...]:
    """Union of term lists keeping first-seen order."""
    seen: dict[str, None] = {}
    for g in groups:
        for t in g:
            seen.setdefault(t, None)
    return tuple(list(seen)[:limit])
