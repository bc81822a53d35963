"""Candidate tables: the engine's top targets per demand with their features, and the re-ranker
the engine calls when a learned model is deployed.

A table holds, for each query (group), the first `depth` targets of the default order; a learned
model re-orders those and leaves the rest in default order behind them, so what it can change is
bounded and the default is always the fallback.

A table's columns are `features.feature_names(evidence)`: the base features, plus the seven
evidence features only when asked; the engine hook computes the evidence features only for a
model whose feature names include them, so a model trained without them costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError
from matcher.learning.features import (
    BASE_FEATURES,
    FEATURES,
    CorpusFacts,
    History,
    QueryView,
    capability_table,
    feature_names,
    partner_table,
    uses_evidence,
)
from matcher.learning.ranker import LearnedRanker
from matcher.records import Demand
from matcher.retrieval.rank import aggregate, fuse, top_k

LEVELS = ("partner", "capability")
DEFAULT_DEPTH = 30  # targets re-ranked per query


@dataclass
class CandidateTable:
    """Rows of all queries stacked; `group[i]` rows belong to `query_ids[i]`, in default order."""

    query_ids: list[str]
    target_ids: list[list[str]]
    X: NDArray[np.float32]  # (n_rows, n_features)
    group: NDArray[np.int64]  # (n_queries,)
    rest: list[list[tuple[str, float]]]  # the default order beyond `depth`, for full runs
    feature_names: tuple[str, ...] = BASE_FEATURES

    @property
    def offsets(self) -> NDArray[np.int64]:
        return np.r_[0, np.cumsum(self.group)].astype(np.int64)

    def subset(self, queries: Sequence[int]) -> CandidateTable:
        off = self.offsets
        rows = np.concatenate([np.arange(off[q], off[q + 1]) for q in queries]) if len(queries) else np.zeros(0, int)
        return CandidateTable([self.query_ids[q] for q in queries], [self.target_ids[q] for q in queries],
                              self.X[rows], self.group[list(queries)], [self.rest[q] for q in queries],
                              self.feature_names)

    def labels(self, qrels: Mapping[str, Mapping[str, int]]) -> NDArray[np.float64]:
        return np.array([float(qrels.get(q, {}).get(t, 0)) for q, ts in zip(self.query_ids, self.target_ids)
                         for t in ts])

    def run(self, scores: NDArray | None = None) -> dict[str, dict[str, float]]:
        """A BEIR-shaped run: the table's targets ordered by `scores` (default order when None),
        then the rest of the default order."""
        off = self.offsets
        out: dict[str, dict[str, float]] = {}
        for i, (q, ts) in enumerate(zip(self.query_ids, self.target_ids)):
            n = len(ts)
            s = np.arange(n, 0, -1, dtype=np.float64) if scores is None else np.asarray(scores[off[i]:off[i + 1]])
            order = np.argsort(-s, kind="stable")
            run = {ts[j]: float(2 * n + len(self.rest[i]) - r) for r, j in enumerate(order)}
            for r, (t, _) in enumerate(self.rest[i]):
                run.setdefault(t, float(len(self.rest[i]) - r))
            out[q] = run
        return out


def query_views(engine, queries: Sequence[Demand | str], level: str) -> list[QueryView]:
    """The engine's default candidates and order for each query."""
    if level not in LEVELS:
        raise MatcherError(f"unknown level '{level}'; valid: {', '.join(LEVELS)}")
    cands, toks = engine.query_candidates(queries)
    por = engine.partner_of_capability_rows()
    views = []
    for q, cand, tok in zip(queries, cands, toks):
        fused = fuse(cand, engine.params.fusion)
        if level == "partner":
            targets, scores = aggregate(fused, por, engine.params.aggregation)
        else:
            targets = top_k(fused.score, len(fused.score)).astype(np.int64)
            scores = fused.score[targets]
        views.append(QueryView(q if isinstance(q, Demand) else None, tok, cand, fused, targets, scores))
    return views


def build_table(engine, demands: Sequence[Demand], level: str, *, depth: int = DEFAULT_DEPTH,
                history: History | None = None, views: Sequence[QueryView] | None = None,
                rest_depth: int = 100, evidence: bool = False) -> CandidateTable:
    """Features of the first `depth` targets of each demand's default order; the columns are
    `feature_names(evidence)` (the seven evidence features only when `evidence`)."""
    facts = CorpusFacts(engine)
    views = list(views) if views is not None else query_views(engine, demands, level)
    table_of = partner_table if level == "partner" else capability_table
    ids, mats, group, rest = [], [], [], []
    for _d, view in zip(demands, views):
        tids, X = table_of(engine, facts, view, depth, history, evidence)
        ids.append(tids)
        mats.append(X)
        group.append(len(tids))
        rest.append(_rest(engine, view, level, depth, rest_depth))
    names = feature_names(evidence)
    X = np.vstack(mats) if mats else np.zeros((0, len(names)), np.float32)
    return CandidateTable([d.id for d in demands], ids, X, np.asarray(group, np.int64), rest, names)


def _rest(engine, view: QueryView, level: str, depth: int, rest_depth: int) -> list[tuple[str, float]]:
    tail = zip(view.targets[depth:rest_depth], view.scores[depth:rest_depth])
    if level == "partner":
        return [(engine.partner_id_of_number(int(p)), float(s)) for p, s in tail]
    return [(engine.capability_id_of_row(int(view.fused.rows[int(i)])), float(s)) for i, s in tail]


class Reranker:
    """The engine hook (`MatchEngine.reranker`): re-orders a query's first `depth` partners with a
    learned model; everything after keeps the default order, below them. The evidence features
    are computed only when the model was trained on any of them (`self.evidence`)."""

    def __init__(self, model: LearnedRanker, *, depth: int = DEFAULT_DEPTH, history: History | None = None,
                 feature_columns: Sequence[int] | None = None) -> None:
        self.model = model
        self.depth = depth
        self.history = history
        self._facts: CorpusFacts | None = None
        missing = [f for f in model.feature_names if f not in FEATURES]
        if missing:
            raise MatcherError(f"the model needs features this version cannot compute: {', '.join(missing)}")
        self.evidence = uses_evidence(model.feature_names)
        computed = feature_names(self.evidence)
        self.columns = np.array([computed.index(f) for f in model.feature_names], dtype=np.int64)

    def __call__(self, engine, query, qtok, cand, fused, partners, scores):
        if len(partners) == 0:
            return partners, scores
        if self._facts is None or self._facts.engine is not engine or not self._facts.current():
            self._facts = CorpusFacts(engine)
        view = QueryView(query if isinstance(query, Demand) else None, qtok, cand, fused, partners, scores)
        _, X = partner_table(engine, self._facts, view, self.depth, self.history, self.evidence)
        learned = self.model.predict(X[:, self.columns])
        n = len(learned)
        order = np.argsort(-learned, kind="stable")
        # Re-ranked targets keep their learned scores; the rest follow below the lowest of them.
        tail = scores[n:].astype(np.float64)
        if len(tail):
            tail = learned.min() - 1.0 - (tail.max() - tail)
        return (np.r_[partners[:n][order], partners[n:]].astype(np.int64),
                np.r_[learned[order], tail].astype(np.float32))


HISTORY_FEATURES = ("past_outcomes_log", "acceptance_rate", "contract_rate", "busy_log")


def with_history(table: CandidateTable, history: History) -> CandidateTable:
    """The same table with its outcome-history columns recomputed from `history` (partner level:
    target ids are partner ids); each demand's own outcomes are left out of its rows."""
    cols = [table.feature_names.index(f) for f in HISTORY_FEATURES]
    X = table.X.copy()
    row = 0
    for q, ts in zip(table.query_ids, table.target_ids):
        for t in ts:
            X[row, cols] = history.features(t, q)
            row += 1
    return CandidateTable(table.query_ids, table.target_ids, X, table.group, table.rest, table.feature_names)
