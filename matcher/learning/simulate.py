"""A bureau replayed on a judged task: staff see the current ranking, follow up the top few with a
position bias, outcomes follow the hidden judgements with noise, and the ranker retrains every
`retrain_every` outcomes. The assumptions are listed in docs/learning.md.

One step: a demand is drawn at random from the training demands; staff are shown the current
ranking's first `shown` partners; each at rank r is followed up with probability
min(1, (1/r)^eta) (the true position bias, `eta`); a followed-up pair succeeds (meeting held or
better) with probability `p_relevant` when judged relevant and `p_irrelevant` otherwise; that is
one outcome. Held-out demands (never shown to the simulated staff) measure the deployed ranking
against the true judgements after every retraining.

`estimator` says how the log becomes training rows (`logged.ESTIMATORS`): "examined" (the
correction: only followed-up rows, whose examination is logged, labelled by their outcome),
"ipw" (click-model inverse propensity weighting of the successes among all shown rows) or
"naive" (all shown rows, no correction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from matcher.errors import UnknownNameError
from matcher.learning.features import History
from matcher.learning.logged import ESTIMATORS, LoggedList, training_rows
from matcher.learning.table import CandidateTable, with_history
from matcher.learning.train import Config, metrics, train_from_outcomes, train_ranker


@dataclass(frozen=True)
class SimParams:
    outcomes: int = 1000
    retrain_every: int = 100
    shown: int = 10
    eta: float = 1.0  # true position bias: p(follow up at rank r) = r^-eta
    p_relevant: float = 0.8  # a followed-up relevant pair succeeds with this probability
    p_irrelevant: float = 0.05  # ... and an irrelevant one (noise)
    holdout: float = 0.3  # share of judged demands kept out of the simulation, for measuring
    estimator: str = "examined"  # see logged.ESTIMATORS; "naive" is no correction
    seed: int = 0


@dataclass
class CurvePoint:
    outcomes: int
    ndcg10: float
    mrr: float
    deployed: bool
    eta_hat: float | None = None


@dataclass
class SimResult:
    params: SimParams
    default: dict[str, float]  # the unlearned order on the held-out demands
    curve: list[CurvePoint] = field(default_factory=list)


def split_demands(table: CandidateTable, qrels: Mapping, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    judged = [i for i, q in enumerate(table.query_ids) if any(v > 0 for v in qrels.get(q, {}).values())]
    rng = np.random.default_rng(seed)
    order = rng.permutation(judged).tolist()
    n = max(1, int(round(holdout * len(order))))
    return sorted(order[n:]), sorted(order[:n])


def simulate(table: CandidateTable, qrels: Mapping[str, Mapping[str, float]], params: SimParams,
             configs: list[Config] | None = None) -> SimResult:
    """Run one simulated bureau (see module docstring). `table`: partner-level candidate table of
    every judged demand (features at the default ranking)."""
    if params.estimator not in ESTIMATORS:
        raise UnknownNameError("position-bias estimator", params.estimator, list(ESTIMATORS))
    rng = np.random.default_rng(params.seed)
    train_q, test_q = split_demands(table, qrels, params.holdout, params.seed)
    test = table.subset(test_q)
    off = table.offsets
    result = SimResult(params, metrics(test, qrels))
    model = None
    history = History()
    log: list[tuple[int, list[int], list[bool], list[bool]]] = []  # demand, shown rows, followed, success
    current = table
    n_out, next_train = 0, params.retrain_every
    while n_out < params.outcomes:
        q = int(rng.choice(train_q))
        rows = np.arange(off[q], off[q + 1])
        s = model.predict(current.X[rows]) if model is not None else -np.arange(len(rows), dtype=float)
        shown = rows[np.argsort(-s, kind="stable")][: params.shown]
        follow = rng.random(len(shown)) < np.minimum(1.0, np.arange(1, len(shown) + 1, dtype=float) ** -params.eta)
        judged = qrels.get(table.query_ids[q], {})
        success = []
        for r, f in zip(shown, follow):
            pid = table.target_ids[q][r - off[q]]
            rel = judged.get(pid, 0) > 0
            ok = bool(f) and rng.random() < (params.p_relevant if rel else params.p_irrelevant)
            success.append(ok)
            if f:
                history.add(table.query_ids[q], pid, accepted=ok, contract=ok and rng.random() < 0.5)
        log.append((q, shown.tolist(), follow.tolist(), success))
        n_out += int(follow.sum())
        if n_out >= next_train or n_out >= params.outcomes:
            next_train += params.retrain_every
            current = with_history(table, history)
            model, eta_hat = _retrain(current, log, params, configs, model)
            test = current.subset(test_q)
            m = metrics(test, qrels, model.predict(test.X)) if model is not None else metrics(test, qrels)
            result.curve.append(CurvePoint(n_out, m["ndcg@10"], m["mrr"], model is not None, eta_hat))
    return result


def _retrain(table: CandidateTable, log, params: SimParams, configs, previous):
    """Train on the logged lists (one group per list shown) with the run's estimator."""
    lists = [LoggedList(table.query_ids[q], [str(j) for j in shown], table.X[shown], fol,
                        [float(s) for s in success]) for q, shown, fol, success in log]
    rows = training_rows(lists, table.feature_names, params.estimator)
    if rows is None:
        return previous, None
    if configs is None:
        res = train_from_outcomes(rows, seed=params.seed)
    else:
        res = train_ranker(rows.table, rows.y, rows.gate_qrels, weight=rows.weight, configs=configs,
                           seed=params.seed, demands=rows.demands)
    eta_hat = rows.propensity.eta if params.estimator != "naive" else None
    return (res.model if res.model is not None else previous), eta_hat
