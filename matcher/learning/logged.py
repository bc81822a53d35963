"""Training rows from a log of shown lists, for each position-bias estimator, and the gate's
judgements that go with them.

A logged list is what staff were shown for one demand: the partners' feature rows in shown
order, whether each was contacted (examined) and its outcome label (0 none, 1 meeting, 2
agreement; only a contacted pair can have one). Estimators (`ESTIMATORS`):

- "examined" (the default correction): contacting is logged, so it is conditioned on. Only the
  contacted rows are training rows, labelled by their outcome; an uncontacted row carries no
  label at all. Under the position-based model (staff contact by position, the outcome of a
  contact depends on the pair only), P(outcome | features, contacted) does not depend on the
  rank, so nothing is biased and no weight is needed; the gate scores held-out lists on their
  contacted rows against the default order of those same rows.
- "ipw": the click-model estimator for hidden examination (Joachims, Swaminathan and Schnabel
  2017): every shown row is a row, uncontacted ones as failures, and each success weighs
  1 / p(rank) (clipped); the gate uses the inverse propensities as gains. Kept for comparison.
- "naive": every shown row, uncontacted ones as failures, no weights (no correction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import UnknownNameError
from matcher.learning.propensity import Propensity, estimate
from matcher.learning.table import CandidateTable

ESTIMATORS = ("examined", "ipw", "naive")


@dataclass(frozen=True)
class LoggedList:
    """One shown list: `X` (n, n_features) in shown order (rank 1 first), `targets` their ids,
    `contacted` (n,) bool, `label` (n,) outcome labels (0 where not contacted), `ranks` the
    1-based ranks they were shown at (default 1..n)."""

    demand_id: str
    targets: Sequence[str]
    X: NDArray
    contacted: Sequence[bool]
    label: Sequence[float]
    ranks: Sequence[int] | None = None

    def shown_ranks(self) -> NDArray[np.int64]:
        return np.arange(1, len(self.targets) + 1) if self.ranks is None else np.asarray(self.ranks, np.int64)


@dataclass
class TrainingRows:
    table: CandidateTable  # one group per list that kept rows
    y: NDArray[np.float64]
    weight: NDArray[np.float64]
    gate_qrels: dict[str, dict[str, float]]  # what the gate scores held-out groups against
    propensity: Propensity
    demands: list[str]  # the demand of each group (a demand shown several times has several)


def training_rows(lists: Sequence[LoggedList], feature_names: Sequence[str], estimator: str = "examined",
                  *, max_weight: float = 20.0) -> TrainingRows | None:
    """The rows, labels, weights and gate judgements of `estimator` (see the module docstring);
    None when no list keeps a row. Group ids are `demand_id#i` (i: the list's position)."""
    if estimator not in ESTIMATORS:
        raise UnknownNameError("position-bias estimator", estimator, list(ESTIMATORS))
    ranks = [int(r) for lst in lists for r in lst.shown_ranks()]
    contacted = [bool(c) for lst in lists for c in lst.contacted]
    prop = estimate(ranks, contacted, max_weight=max_weight)
    rank_col = list(feature_names).index("default_rank_inv") if "default_rank_inv" in feature_names else None
    X, y, w, group, ids, targets, demands = [], [], [], [], [], [], []
    for i, lst in enumerate(lists):
        n = len(lst.targets)
        keep = np.arange(n) if estimator != "examined" else np.flatnonzero(np.asarray(lst.contacted, dtype=bool))
        if len(keep) == 0:
            continue
        if estimator == "examined" and rank_col is not None:
            # Rows in the default order, so the gate's baseline is the default ranking of the
            # contacted rows, not the order they happened to be shown in.
            keep = keep[np.argsort(-np.asarray(lst.X)[keep, rank_col], kind="stable")]
        lab = np.asarray(lst.label, dtype=np.float64)[keep]
        X.append(np.asarray(lst.X)[keep])
        y.extend(lab)
        w.extend(prop.weights(lst.shown_ranks()[keep]) if estimator == "ipw" else np.ones(len(keep)))
        group.append(len(keep))
        ids.append(f"{lst.demand_id}#{i}")
        demands.append(lst.demand_id)
        targets.append([str(lst.targets[j]) for j in keep])
    if not X:
        return None
    table = CandidateTable(ids, targets, np.vstack(X), np.asarray(group, np.int64), [[] for _ in ids],
                           tuple(feature_names))
    y_arr, w_arr = np.asarray(y), np.asarray(w, dtype=np.float64)
    if estimator == "ipw":
        w_arr = np.where(y_arr > 0, w_arr, 1.0)  # only the successes carry a propensity weight
        # A success's gain 2^g - 1 is its inverse propensity times its label's gain: the IPS
        # estimate of DCG, so a ranking is not judged by where its successes happened to be shown.
        gains = np.where(y_arr > 0, np.log2(1.0 + w_arr * (2.0 ** y_arr - 1.0)), 0.0)
    else:
        gains = y_arr
    gate = {q: {t: float(g) for t, g in zip(ts, gains[o:o + len(ts)])}
            for q, ts, o in zip(ids, targets, table.offsets[:-1])}
    return TrainingRows(table, y_arr, w_arr, gate, prop, demands)

