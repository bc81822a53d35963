"""Training with a deployment gate, and cross-validation over demands.

`train_ranker` splits the training demands into a few gate folds; each candidate configuration is
fitted on all but one fold and scored on that one, so every demand is held out once. The
configuration with the surest gain over the default order is kept only if that gain is positive
with margin: its mean per-demand gain minus `confidence` standard errors must exceed `min_gain`
(2 standard errors: the best of several configurations is picked, and one would let chance
through). Otherwise it returns no model and the default stays. A single held-out share, the
previous gate, picked the best of four configurations on a few dozen demands and let chance
winners through (scifact: two of five cross-validation folds deployed a model that then lost on
the fold's test demands). The winner is refitted on all the training demands. `cross_validate`
runs that whole procedure inside each of k folds over demands, so the fold's test demands are
never seen by training or by the gate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from matcher.learning.logged import TrainingRows
from matcher.learning.metrics import all_metrics, per_query
from matcher.learning.ranker import LearnedRanker, lightgbm_available
from matcher.learning.table import CandidateTable

Qrels = Mapping[str, Mapping[str, float]]
GATE_METRICS = ("ndcg@10", "mrr")
PRIOR_FEATURE = "default_score"


@dataclass(frozen=True)
class Config:
    backend: str
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 7
    l2: float = 1.0
    prior: bool = False  # a correction of the default order (see `ranker`), not a replacement
    min_child_samples: int = 10

    def make(self, features: Sequence[str], seed: int = 0) -> LearnedRanker:
        prior = PRIOR_FEATURE if self.prior and PRIOR_FEATURE in features else None
        return LearnedRanker(features, self.backend, n_estimators=self.n_estimators,
                             learning_rate=self.learning_rate, num_leaves=self.num_leaves, l2=self.l2,
                             min_child_samples=self.min_child_samples, random_state=seed, prior=prior)


OUTCOME_CONFIDENCE = 1.0  # standard errors of validated gain an outcome-trained model must clear


def outcome_configs() -> list[Config]:
    """The one configuration learning from outcomes tries: a linear correction of the default
    order, shrunk hard towards it (L2 100). A few hundred noisy, position-biased outcomes cannot
    teach a ranking from scratch; they can say where the default is wrong, and a model shrunk
    towards the default cannot wander far from it. One pre-chosen configuration, not the best of
    several: on a few hundred outcomes the gate's validation is too noisy to pick among them, and
    a second candidate (the same correction with L2 10) won it by chance and lost on held-out
    demands (docs/learning.md, "Why one correction")."""
    return [Config("linear", l2=100.0, prior=True)]


def train_from_outcomes(rows: TrainingRows, *, seed: int = 0) -> TrainResult:
    """`train_ranker` on a log's training rows (`logged.training_rows`) with the outcome
    configuration and gate: deployed when its validated gain clears one standard error
    (`OUTCOME_CONFIDENCE`). Two, the judgements' margin, guards against the best of several
    configurations winning by chance; with one pre-chosen configuration there is no such choice,
    and on the demo corpus's simulator two let 5 bureaus of 30 run the correction by 1,000
    outcomes, one 21 (docs/learning.md, "Why one correction")."""
    return train_ranker(rows.table, rows.y, rows.gate_qrels, weight=rows.weight, configs=outcome_configs(),
                        seed=seed, demands=rows.demands, confidence=OUTCOME_CONFIDENCE)


def default_configs() -> list[Config]:
    """Configurations for learning from judgements: three replacements of the default order and
    three corrections of it (linear with L2 10 and 100, LightGBM). Judgements can teach a
    ranking from scratch, but where the default is already good (the demo corpus: nDCG@10 0.90,
    MRR 0.98) a correction, shrunk towards it, is the surer gain; the gate picks between them on
    held-out demands. A larger LightGBM replacement (300 trees of 15 leaves), tried before, was
    the worst of them on the demo corpus, scifact and csl-disciplines alike when cross-validated
    without a gate (docs/learning.md): with a few hundred judged demands it fits noise, and one
    more candidate that can win the gate by chance costs the gate's other candidates."""
    trees = [Config("lightgbm", n_estimators=100, learning_rate=0.05, num_leaves=7)] if lightgbm_available() else []
    replacements = [Config("linear", l2=1.0), Config("linear", l2=30.0), *trees]
    corrections = [Config("linear", l2=10.0, prior=True), *outcome_configs(),
                   *(dataclasses.replace(t, prior=True) for t in trees)]
    return replacements + corrections


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
                 configs: Sequence[Config] | None = None, gate_folds: int = 4, seed: int = 0,
                 gate_metric: str = "ndcg@10", min_gain: float = 0.0, confidence: float = 2.0,
                 demands: Sequence[str] | None = None) -> TrainResult:
    """Fit on the table's queries, gated by k-fold validation over them (see module docstring).

    y: (n_rows,) labels of the table rows (graded judgements, or outcomes); qrels: what the gate
    scores against (for outcomes: the outcomes themselves); weight: per-row sample weights;
    demands: the demand of each query when several queries share one (lists shown for the same
    demand at different times): they are held out together, so the gate never scores a model
    on a demand it was fitted on."""
    configs = list(configs or default_configs())
    usable = set(trainable(table, y))
    if len(usable) < 4:
        return TrainResult(None, None, reason=f"only {len(usable)} demands with both outcomes: too few to learn")
    folds = gate_split(table.query_ids if demands is None else demands, gate_folds, seed)
    held_values: dict[str, dict[str, list[float]]] = {}  # "default" / config -> metric -> per held-out demand
    gains: dict[Config, list[float]] = {cfg: [] for cfg in configs}
    for held in folds:
        fit_q = [i for i in range(len(table.query_ids)) if i in usable and i not in set(held)]
        if len(fit_q) < 2:
            continue
        vtable = table.subset(held)
        base = _per_query(vtable, qrels)
        _extend(held_values.setdefault("default", {}), base)
        for cfg in configs:
            model = fit_on(table, y, cfg, fit_q, weight, seed)
            scored = _per_query(vtable, qrels, model.predict(vtable.X))
            _extend(held_values.setdefault(_name(cfg), {}), scored)
            gains[cfg] += [scored[gate_metric][q] - base[gate_metric][q] for q in base[gate_metric]]
    if "default" not in held_values or not any(gains.values()):
        return TrainResult(None, None, reason="too few trainable demands outside each validation fold")
    validation = {name: {m: float(np.mean(v)) if v else 0.0 for m, v in values.items()}
                  for name, values in held_values.items()}
    result = TrainResult(None, None, validation, gate_metric)
    bounds = {cfg: _lower_bound(gains[cfg], confidence) for cfg in configs}
    best = max(configs, key=lambda cfg: bounds[cfg])  # the surest gain, not the largest mean
    g = np.asarray(gains[best])
    mean, se = float(g.mean()), float(g.std(ddof=1) / np.sqrt(len(g))) if len(g) > 1 else float("inf")
    n_held = len(g)
    summary = (f"{gate_metric} {validation[_name(best)][gate_metric]:.4f} against "
               f"{validation['default'][gate_metric]:.4f} on {n_held} held-out demands in {len(folds)} folds "
               f"(gain {mean:+.4f} ± {se:.4f})")
    if not mean - confidence * se > min_gain:
        result.reason = f"no configuration beat the default with margin; best {_name(best)}: {summary}"
        return result
    result.config = best
    result.model = fit_on(table, y, best, sorted(usable), weight, seed)
    result.reason = f"{_name(best)} beat the default: {summary}"
    return result


def gate_split(demands: Sequence[str], folds: int, seed: int) -> list[list[int]]:
    """Query positions in `folds` groups, every query of one demand in the same group."""
    keys = sorted(set(demands))
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_of = {keys[k]: i % folds for i, k in enumerate(order)}
    out = [[q for q, d in enumerate(demands) if fold_of[d] == f] for f in range(min(folds, len(keys)))]
    return [f for f in out if f]


def _lower_bound(gains: Sequence[float], confidence: float) -> float:
    """Mean per-demand gain minus `confidence` standard errors (-inf with fewer than two)."""
    if len(gains) < 2:
        return -np.inf
    g = np.asarray(gains, np.float64)
    return float(g.mean() - confidence * g.std(ddof=1) / np.sqrt(len(g)))


def _per_query(table: CandidateTable, qrels: Qrels, scores: NDArray | None = None) -> dict[str, dict[str, float]]:
    judged = {q: qrels[q] for q in table.query_ids if q in qrels}
    return per_query(table.run(scores), judged)


def _extend(into: dict[str, list[float]], values: dict[str, dict[str, float]]) -> None:
    for metric, per_demand in values.items():
        into.setdefault(metric, []).extend(per_demand.values())


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
    plus = "+default" if cfg.prior else ""
    if cfg.backend == "linear":
        return f"linear{plus}(l2={cfg.l2:g})"
    return f"lightgbm{plus}({cfg.n_estimators}x{cfg.learning_rate:g},{cfg.num_leaves} leaves)"
