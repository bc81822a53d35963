"""Training with a deployment gate, and cross-validation over demands.

`train_ranker` holds out a share of the training demands, fits each candidate configuration on
the rest, and keeps the best only if it beats the default order on those held-out demands;
otherwise it returns no model and the default stays. The winner is then refitted on all the
training demands. `cross_validate` runs that whole procedure inside each of k folds over
demands, so the fold's test demands are never seen by training or by the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from matcher.learning.metrics import all_metrics
from matcher.learning.ranker import LearnedRanker, lightgbm_available
from matcher.learning.table import CandidateTable

Qrels = Mapping[str, Mapping[str, float]]
GATE_METRICS = ("ndcg@10", "mrr")


@dataclass(frozen=True)
class Config:
    backend: str
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 7
    l2: float = 1.0

    def make(self, features: Sequence[str], seed: int = 0) -> LearnedRanker:
        return LearnedRanker(features, self.backend, n_estimators=self.n_estimators,
                             learning_rate=self.learning_rate, num_leaves=self.num_leaves, l2=self.l2,
                             random_state=seed)


def default_configs() -> list[Config]:
    configs = [Config("linear", l2=1.0), Config("linear", l2=30.0)]
    if lightgbm_available():
        configs += [Config("lightgbm", n_estimators=100, learning_rate=0.05, num_leaves=7),
                    Config("lightgbm", n_estimators=300, learning_rate=0.03, num_leaves=15)]
    return configs


@dataclass
class TrainResult:
    model: LearnedRanker | None  # None: the default order stays
    config: Config | None
    validation: dict[str, dict[str, float]] = field(default_factory=dict)  # "default" and each config
    gate_metric: str = "ndcg@10"
    reason: str = ""


def metrics(table: CandidateTable, qrels: Qrels, scores: NDArray | None = None) -> dict[str, float]:
    """nDCG@10, MRR, recall@10 and accuracy@1 of the table's queries (default order when scores is None)."""
    judged = {q: qrels[q] for q in table.query_ids if q in qrels}
    return all_metrics(table.run(scores), judged)


def trainable(table: CandidateTable, y: NDArray) -> list[int]:
    """Queries with at least one relevant and one non-relevant target in their table."""
    off = table.offsets
    return [i for i in range(len(table.group))
            if (y[off[i]:off[i + 1]] > 0).any() and (y[off[i]:off[i + 1]] <= 0).any()]


def fit_on(table: CandidateTable, y: NDArray, config: Config, queries: Sequence[int],
           weight: NDArray | None = None, seed: int = 0) -> LearnedRanker:
    sub = table.subset(queries)
    rows = _rows(table, queries)
    return config.make(table.feature_names, seed).fit(sub.X, y[rows], sub.group,
                                                      None if weight is None else weight[rows])


def train_ranker(table: CandidateTable, y: NDArray, qrels: Qrels, *, weight: NDArray | None = None,
                 configs: Sequence[Config] | None = None, holdout: float = 0.25, seed: int = 0,
                 gate_metric: str = "ndcg@10", min_gain: float = 0.0) -> TrainResult:
    """Fit on the table's queries, gated on held-out queries (see module docstring).

    y: (n_rows,) labels of the table rows (graded judgements, or outcomes); qrels: what the gate
    scores against (for outcomes: the outcomes themselves); weight: per-row sample weights."""
    configs = list(configs or default_configs())
    usable = trainable(table, y)
    if len(usable) < 4:
        return TrainResult(None, None, reason=f"only {len(usable)} demands with both outcomes: too few to learn")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(table.query_ids))
    n_val = max(2, int(round(holdout * len(order))))
    val = sorted(order[:n_val].tolist())
    fit_q = [i for i in order[n_val:].tolist() if i in set(usable)]
    if len(fit_q) < 2:
        return TrainResult(None, None, reason="too few trainable demands outside the validation share")
    vtable = table.subset(val)
    result = TrainResult(None, None, {"default": metrics(vtable, qrels)}, gate_metric)
    best, best_value = None, result.validation["default"][gate_metric] + min_gain
    for cfg in configs:
        model = fit_on(table, y, cfg, fit_q, weight, seed)
        m = metrics(vtable, qrels, model.predict(vtable.X))
        result.validation[_name(cfg)] = m
        if m[gate_metric] > best_value:
            best, best_value = cfg, m[gate_metric]
    if best is None:
        result.reason = (f"no configuration beat the default {gate_metric} "
                         f"{result.validation['default'][gate_metric]:.4f} on {len(val)} held-out demands")
        return result
    result.config = best
    result.model = fit_on(table, y, best, [i for i in range(len(table.query_ids)) if i in set(usable)], weight, seed)
    result.reason = (f"{_name(best)} beat the default on {len(val)} held-out demands: {gate_metric} "
                     f"{best_value:.4f} against {result.validation['default'][gate_metric]:.4f}")
    return result


@dataclass(frozen=True)
class FoldResult:
    fold: int
    n_test: int
    default: dict[str, float]
    learned: dict[str, float]
    deployed: bool
    config: str


def cross_validate(table: CandidateTable, qrels: Qrels, *, folds: int = 5, seed: int = 0,
                   configs: Sequence[Config] | None = None, gate_metric: str = "ndcg@10") -> list[FoldResult]:
    """k folds over demands; in each, `train_ranker` on the other folds (its own gate included)
    and both orders scored on the fold."""
    y = table.labels(qrels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(table.query_ids))
    out = []
    for f in range(folds):
        test = sorted(order[f::folds].tolist())
        train = sorted(set(range(len(order))) - set(test))
        ttable, trtable = table.subset(test), table.subset(train)
        res = train_ranker(trtable, y[_rows(table, train)], qrels, configs=configs, seed=seed + f,
                           gate_metric=gate_metric)
        base = metrics(ttable, qrels)
        learned = metrics(ttable, qrels, res.model.predict(ttable.X)) if res.model is not None else base
        out.append(FoldResult(f, len(test), base, learned, res.model is not None,
                              _name(res.config) if res.config else "default"))
    return out


def _rows(table: CandidateTable, queries: Sequence[int]) -> NDArray[np.int64]:
    off = table.offsets
    return (np.concatenate([np.arange(off[q], off[q + 1]) for q in queries]).astype(np.int64)
            if len(queries) else np.zeros(0, np.int64))


def _name(cfg: Config) -> str:
    if cfg.backend == "linear":
        return f"linear(l2={cfg.l2:g})"
    return f"lightgbm({cfg.n_estimators}x{cfg.learning_rate:g},{cfg.num_leaves} leaves)"
