"""Fitting and measuring the calibrated fit on a judged task (`techmatch calibrate`).

The judged population is every (judged demand, target) pair: on a task with at most
`ALL_TARGETS_UP_TO` targets (a bureau's own partners) every target, otherwise the targets that
some demand's judgement names (the others' relevant targets are hard negatives); an unjudged
pair counts as not relevant, as it does for the metrics. Relevant means a grade of at least
`relevant_grade`: 2 on a 0-3 scale (the demo corpus), 1 on binary judgements.

    report = cross_validate(engine, task, folds=5)   # held-out fits per demand, ECE, flag P/R
    cal = fit_on_task(engine, task)                  # fitted on everything, `about` filled in
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError
from matcher.retrieval.calibration import (
    FitCalibrator,
    Thresholds,
    choose_thresholds,
    expected_calibration_error,
    reliability_table,
)
from matcher.retrieval.engine import MatchEngine

ALL_TARGETS_UP_TO = 500
CHUNK = 128  # demands whose features are held at once


def relevant_grade(qrels) -> int:
    """2 on graded judgements (a top grade of 3 or more), else 1."""
    top = max((g for judged in qrels.values() for g in judged.values()), default=1)
    return 2 if top >= 3 else 1


def targets_of(task) -> list[str]:
    """The targets every judged demand is paired with (see module docstring)."""
    if task.level == "partner":
        every = sorted({c.partner_id for c in task.capabilities})
    else:
        every = sorted(c.id for c in task.capabilities)
    if len(every) <= ALL_TARGETS_UP_TO:
        return every
    return sorted({t for judged in task.qrels.values() for t in judged})


@dataclass
class JudgedPairs:
    """Every judged demand against every target: grades (nd, nt) (0 where unjudged), whether
    judged, and per demand chunk the features the calibrator fits on."""

    demand_ids: list[str]
    target_ids: list[str]
    grades: NDArray[np.int64]
    judged: NDArray[np.bool_]
    features: list[NDArray[np.float32]]  # per chunk: (chunk, n_rows, 4)
    cols: list[NDArray[np.intp]]  # target j's feature columns
    fits: NDArray[np.float64]  # (nd, nt) fits under the engine's calibrator

    def groups(self, demands: NDArray[np.intp], targets: NDArray[np.intp] | None = None):
        """(list of (n_caps, 4) feature groups, grades) for these demand positions."""
        targets = np.arange(len(self.target_ids)) if targets is None else targets
        out, grades = [], []
        for i in demands:
            block = self.features[i // CHUNK][i % CHUNK]
            for j in targets:
                out.append(block[self.cols[j]])
                grades.append(self.grades[i, j])
        return out, np.asarray(grades)


def judged_pairs(engine: MatchEngine, task) -> JudgedPairs:
    demands = [d for d in task.demands if d.id in task.qrels]
    targets = targets_of(task)
    pos = {t: j for j, t in enumerate(targets)}
    grades = np.zeros((len(demands), len(targets)), dtype=np.int64)
    judged = np.zeros_like(grades, dtype=bool)
    for i, d in enumerate(demands):
        for t, g in task.qrels[d.id].items():
            if t in pos:
                grades[i, pos[t]] = g
                judged[i, pos[t]] = True
    feats, fits, cols = [], [], []
    for start in range(0, len(demands), CHUNK):
        f, x, cols = engine.fits_against(demands[start : start + CHUNK], targets, level=task.level)
        fits.append(f)
        feats.append(x)
    fit_matrix = np.vstack(fits) if fits else np.zeros((0, len(targets)))
    return JudgedPairs([d.id for d in demands], targets, grades, judged, feats, cols, fit_matrix)


def _sample_negatives(pairs: JudgedPairs, demands: NDArray[np.intp], rel: int, limit: int, rng):
    """Training groups for these demands: every judged or relevant pair, and unjudged pairs up to
    `limit` in all, weighted back so they count as the whole population would."""
    groups, grades, weights = [], [], []
    n_targets = len(pairs.target_ids)
    unjudged = [(i, j) for i in demands for j in range(n_targets) if not pairs.judged[i, j]]
    keep = unjudged
    if len(unjudged) > limit:
        keep = [unjudged[s] for s in rng.choice(len(unjudged), limit, replace=False)]
    weight = len(unjudged) / max(len(keep), 1)
    for i in demands:
        block = pairs.features[i // CHUNK][i % CHUNK]
        for j in np.flatnonzero(pairs.judged[i]):
            groups.append(block[pairs.cols[j]])
            grades.append(pairs.grades[i, j])
            weights.append(1.0)
    for i, j in keep:
        groups.append(pairs.features[i // CHUNK][i % CHUNK][pairs.cols[j]])
        grades.append(0)
        weights.append(weight)
    return groups, np.asarray(grades) >= rel, np.asarray(weights)


def fit_on_task(engine: MatchEngine, task, *, pairs: JudgedPairs | None = None, seed: int = 0,
                max_unjudged: int = 50_000) -> FitCalibrator:
    """A calibrator fitted on all the task's judged demands."""
    pairs = pairs or judged_pairs(engine, task)
    rel = relevant_grade(task.qrels)
    groups, y, w = _sample_negatives(pairs, np.arange(len(pairs.demand_ids)), rel, max_unjudged,
                                     np.random.default_rng(seed))
    cal = FitCalibrator().fit(groups, y, sample_weight=w)
    cal.about_ = {"task": task.name, "model": engine.encoder.name, "judged_demands": len(pairs.demand_ids),
                  "targets": len(pairs.target_ids), "relevant_grade": rel}
    return cal


@dataclass
class CalibrationReport:
    fits: NDArray[np.float64]  # (nd, nt) held-out fits
    relevant: NDArray[np.bool_]  # (nd, nt)
    judged: NDArray[np.bool_]
    thresholds: Thresholds  # chosen on the held-out fits
    ece_all: float  # every pair of a held-out demand
    ece_judged: float  # judged pairs only
    ece_top10: float  # each demand's 10 best-fitting targets (what staff see)
    table: list  # reliability_table over all pairs
    flag_precision: float  # "no suitable partner" against demands with no relevant target
    flag_recall: float
    flagged: int
    without_relevant: int


def cross_validate(engine: MatchEngine, task, *, folds: int = 5, seed: int = 0,
                   pairs: JudgedPairs | None = None, fixed: FitCalibrator | None = None,
                   max_unjudged: int = 50_000) -> CalibrationReport:
    """Held-out fits for every judged demand: folds over demands (a demand's pairs are never in
    its own training fold). `fixed`: measure that calibrator instead of refitting (transfer)."""
    pairs = pairs or judged_pairs(engine, task)
    rel = relevant_grade(task.qrels)
    nd = len(pairs.demand_ids)
    if nd < folds and fixed is None:
        raise MatcherError(f"{task.name}: {nd} judged demands, fewer than {folds} folds")
    rng = np.random.default_rng(seed)
    fold = rng.permutation(nd) % folds
    held = np.zeros(pairs.grades.shape)
    possible = np.zeros(nd)  # the "possible" threshold of the calibrator each demand was held out from
    for f in range(folds if fixed is None else 1):
        test = np.flatnonzero(fold == f) if fixed is None else np.arange(nd)
        if fixed is None:
            train = np.flatnonzero(fold != f)
            groups, y, w = _sample_negatives(pairs, train, rel, max_unjudged, rng)
            cal = FitCalibrator().fit(groups, y, sample_weight=w)
        else:
            cal = fixed
        for i in test:
            block = pairs.features[i // CHUNK][i % CHUNK][None]
            held[i] = cal.partner_fits(block, pairs.cols)[0]
            possible[i] = cal.thresholds_.possible
    relevant = pairs.grades >= rel
    thresholds = choose_thresholds(held.ravel(), relevant.ravel())
    top = np.argsort(-held, axis=1)[:, :10]
    flag = held.max(axis=1) < possible
    gap = ~relevant.any(axis=1)
    tp = int((flag & gap).sum())
    return CalibrationReport(
        fits=held,
        relevant=relevant,
        judged=pairs.judged,
        thresholds=thresholds,
        ece_all=expected_calibration_error(held.ravel(), relevant.ravel()),
        ece_judged=expected_calibration_error(held[pairs.judged], relevant[pairs.judged]),
        ece_top10=expected_calibration_error(np.take_along_axis(held, top, 1).ravel(),
                                             np.take_along_axis(relevant, top, 1).ravel()),
        table=reliability_table(held.ravel(), relevant.ravel()),
        flag_precision=tp / flag.sum() if flag.sum() else float("nan"),
        flag_recall=tp / gap.sum() if gap.sum() else float("nan"),
        flagged=int(flag.sum()),
        without_relevant=int(gap.sum()),
    )
