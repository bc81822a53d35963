"""The fit: the probability that staff would judge a (demand, partner) or (demand, capability)
pair relevant, on one scale for every query, filter, page and direction.

Features are taken before any per-query scaling (see `collection.PairScores`), always with the
demand as the query and the capability as the document, whichever way a pair is reached:

    cosine        the raw cosine of the demand's query vector and the capability's passage vector
    standardised  that cosine standardised over the capability collection's rows of the same
                  language (a property of the demand and the collection, not of the candidates)
    lexical       BM25 of the demand's words in the capability over the most the demand's words
                  could score (0..1); not over the query's best candidate
    demand_standardised
                  the capability's view of the pair: the cosine of the capability's and the
                  demand's passage vectors standardised over the demand collection's rows of the
                  demand's language (how unusual this demand is for the capability), so the fit
                  is standardised from both sides; without indexed demands it equals
                  `standardised`

A capability's logit is a linear function of the features the calibrator uses (by default the
standardised cosine and the lexical share; see `FitCalibrator`). A partner's fit takes its best
capability's logit plus `support` (a decayed sum of the fits of its next few capabilities), so
a partner with several unrelated lines is judged on the line that fits. Both are fitted by
L2-regularised logistic regression on judged pairs (`FitCalibrator.fit`), and saved as JSON.

    cal = FitCalibrator().fit(groups, relevant)      # groups: per judged pair, (n_caps, 4) features
    cal.partner_fit(group) -> float ; cal.capability_fit(features) -> array ; cal.label(fit) -> str
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError, NotFittedError
from matcher.fsutil import atomic_text

FEATURES = ("cosine", "standardised", "lexical", "demand_standardised")
LABELS = ("strong", "possible", "weak")
DEFAULT_RESOURCE = "default_calibration.json"
FORMAT_VERSION = 1


def pair_features(dense, centred, lexical, lexical_scale, other_centred=None) -> NDArray[np.float64]:
    """(..., 4) float64 features (FEATURES) from raw pair scores of equal shape; lexical_scale
    broadcasts; other_centred: the capability's view (None: the same as `centred`)."""
    lex = np.asarray(lexical, np.float64) / np.maximum(np.asarray(lexical_scale, np.float64), 1e-9)
    centred = np.asarray(centred, np.float64)
    other = centred if other_centred is None else np.asarray(other_centred, np.float64)
    return np.stack([np.asarray(dense, np.float64), centred, np.clip(lex, 0.0, 1.0), other], axis=-1)


def features_of(scores) -> NDArray[np.float64]:
    """(nq, nr, 4) features of a `collection.PairScores` block."""
    return pair_features(scores.dense, scores.centred, scores.lexical, scores.lexical_scale[:, None],
                         scores.other_centred)


PAD_BUDGET = 4_000_000  # padded logits held at once by `partner_fits`


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass(frozen=True)
class Thresholds:
    strong: float
    possible: float


class FitCalibrator:
    """Logistic calibration of pair features to P(relevant), estimator-style.

    l2: ridge penalty on the standardised coefficients; top_m, decay: how many further
    capabilities count as a partner's support and how fast their weight falls; features: which
    of FEATURES the logit uses. The raw cosine is left out by default: on the demo corpus it
    added nothing once the standardised cosine was in (held-out ECE and both directions' nDCG
    equal or better without it), and its scale differs from model to model, while the
    standardised cosine and the lexical share mean much the same under any encoder."""

    def __init__(
        self,
        l2: float = 1.0,
        top_m: int = 5,
        decay: float = 0.5,
        rounds: int = 3,
        features: Sequence[str] = ("standardised", "demand_standardised", "lexical"),
    ):
        self.features = tuple(features)
        self.l2 = l2
        self.top_m = top_m
        self.decay = decay
        self.rounds = rounds

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        groups: Sequence[NDArray[np.float32]],
        relevant: Sequence[bool] | NDArray[np.bool_],
        sample_weight: Sequence[float] | NDArray[np.float64] | None = None,
    ) -> FitCalibrator:
        """groups: one (n_caps, 4) feature array per judged (demand, partner) pair, the rows
        being the partner's capabilities; relevant: (n_pairs,) whether staff judged it relevant.
        A (demand, capability) judgement is a group of one row. sample_weight: (n_pairs,) how
        many pairs of the population each stands for (when unjudged pairs are subsampled)."""
        y = np.asarray(relevant, dtype=np.float64)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if len(groups) != len(y):
            raise MatcherError(f"{len(groups)} feature groups but {len(y)} judgements")
        if len(y) < 10 or y.sum() < 2 or y.sum() > len(y) - 2:
            raise MatcherError(
                f"calibration needs judged pairs of both kinds: got {len(y)} pairs, {int(y.sum())} relevant"
            )
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or not self.features:
            raise MatcherError(f"unknown calibration feature(s) {unknown}; choose from {list(FEATURES)}")
        self.columns_ = np.array([FEATURES.index(f) for f in self.features])
        groups = [np.asarray(g, np.float64).reshape(-1, len(FEATURES))[:, self.columns_] for g in groups]
        # Start by choosing each partner's best capability by the standardised cosine and lexical share.
        start = {"cosine": 0.0, "standardised": 1.0, "lexical": 2.0}
        coef = np.array([start.get(f, 1.0) for f in self.features] + [0.0])
        intercept = 0.0
        for _ in range(max(1, self.rounds)):
            X = np.array([self._partner_row(g, coef, intercept) for g in groups])
            coef, intercept = _logistic(X, y, self.l2, w)
        self.coef_ = coef
        self.intercept_ = float(intercept)
        self.n_pairs_ = int(len(y))
        self.n_relevant_ = int(y.sum())
        fits = np.array([self._partner_logit_selected(g) for g in groups])
        self.thresholds_ = choose_thresholds(_sigmoid(fits), y, w)
        return self

    def _partner_row(self, g: NDArray[np.float64], coef, intercept) -> NDArray[np.float64]:
        logits = g @ coef[:-1] + intercept
        order = np.argsort(-logits, kind="stable")
        support = self._support(_sigmoid(logits[order]))
        return np.r_[g[order[0]], support]

    def _support(self, probs_sorted: NDArray[np.float64]) -> float:
        nxt = probs_sorted[1 : self.top_m]
        weights = self.decay ** np.arange(1, len(nxt) + 1)
        total = 0.0
        for p, w in zip(nxt, weights):  # summed in the order `partner_fits` sums them
            total += p * w
        return float(total)

    # -- predicting ------------------------------------------------------------------------
    def capability_logit(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        """(...,) logits of (..., 4) features: a capability alone, no support."""
        self._check_fitted()
        return np.asarray(features, np.float64)[..., self.columns_] @ self.coef_[:-1] + self.intercept_

    def capability_fit(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        return _sigmoid(self.capability_logit(features))

    def _partner_logit_selected(self, group: NDArray[np.float64]) -> float:
        logits = np.sort(group @ self.coef_[:-1] + self.intercept_)[::-1]
        return float(logits[0] + self.coef_[-1] * self._support(_sigmoid(logits)))

    def partner_fit(self, group: NDArray[np.float32]) -> float:
        """The fit of a partner from its capabilities' (n_caps, 4) features (all of them)."""
        self._check_fitted()
        g = np.asarray(group, np.float64).reshape(-1, len(FEATURES))[:, self.columns_]
        return float(_sigmoid(self._partner_logit_selected(g)))

    def partner_fits(self, features: NDArray[np.float32], groups: Sequence[NDArray[np.intp]]) -> NDArray[np.float64]:
        """(nq, n_groups) partner fits from (nq, nr, 4) features; groups[j]: the columns of
        partner j. Same numbers as `partner_fit` on each (query, partner) group, whichever other
        groups and queries share the call."""
        return self._fits_of_logits(self.capability_logit(features), groups)

    def partner_fits_spans(self, features: NDArray[np.float32], bounds: NDArray[np.int64]) -> NDArray[np.float64]:
        """`partner_fits` for partners whose columns follow each other: partner j owns columns
        bounds[j] to bounds[j + 1]. The same numbers; one query (a request) is scored with one
        sort instead of padded blocks, which cost more than the scoring at hundreds of partners."""
        bounds = np.asarray(bounds, np.int64)
        sizes = np.diff(bounds)
        logits = self.capability_logit(features)  # (nq, nr)
        if logits.shape[0] != 1 or not len(sizes) or not logits.shape[1]:
            return self._fits_of_logits(logits, [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])])
        owner = np.repeat(np.arange(len(sizes)), sizes)
        ranked = logits[0][np.lexsort((-logits[0], owner))]  # each partner's logits, best first
        starts = np.minimum(bounds[:-1], len(ranked) - 1)  # a partner without rows is masked below
        weights = self.decay ** np.arange(1, max(self.top_m, 1))
        support = np.zeros(len(sizes))
        for k in range(1, min(self.top_m, int(sizes.max()))):  # the order `_padded_fits` sums in
            support += np.where(k < sizes, _sigmoid(ranked[np.minimum(starts + k, len(ranked) - 1)]) * weights[k - 1],
                                0.0)
        return np.where(sizes > 0, _sigmoid(ranked[starts] + self.coef_[-1] * support), 0.0)[None, :]

    def _fits_of_logits(self, logits: NDArray[np.float64], groups: Sequence[NDArray[np.intp]]) -> NDArray[np.float64]:
        out = np.zeros((logits.shape[0], len(groups)))
        sizes = np.fromiter(map(len, groups), np.int64, count=len(groups))
        weights = self.decay ** np.arange(1, max(self.top_m, 1))
        # Partners padded to the next power of two of their size, a bucket at a time: a Python
        # loop over hundreds of partners per request cost more than the scoring itself.
        buckets = np.where(sizes > 0, 2 ** np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64), 0)
        for width in np.unique(buckets[buckets > 0]):
            members = np.flatnonzero(buckets == width)
            step = max(1, PAD_BUDGET // max(1, logits.shape[0] * int(width)))
            for start in range(0, len(members), step):
                part = members[start : start + step]
                out[:, part] = self._padded_fits(logits, [groups[j] for j in part], sizes[part], int(width), weights)
        return out

    def _padded_fits(self, logits, groups, sizes, width: int, weights) -> NDArray[np.float64]:
        """Fits of partners whose capabilities' logits fit in `width` columns (padded with -inf)."""
        present = np.arange(width)[None, :] < sizes[:, None]  # (g, width)
        cols = np.zeros(present.shape, np.int64)
        cols[present] = np.concatenate(groups)
        block = np.where(present[None], logits[:, cols], -np.inf)  # (nq, g, width)
        block = -np.sort(-block, axis=2)  # each partner's logits, best first
        support = np.zeros(block.shape[:2])
        for k in range(1, min(self.top_m, width)):
            support += np.where((k < sizes)[None, :], _sigmoid(block[:, :, k]) * weights[k - 1], 0.0)
        return _sigmoid(block[:, :, 0] + self.coef_[-1] * support)

    def label(self, fit: float) -> str:
        self._check_fitted()
        if fit >= self.thresholds_.strong:
            return "strong"
        return "possible" if fit >= self.thresholds_.possible else "weak"

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "format": FORMAT_VERSION,
            "features": [*self.features, "support"],
            "coef": [round(float(c), 8) for c in self.coef_],
            "intercept": round(self.intercept_, 8),
            "thresholds": {"strong": self.thresholds_.strong, "possible": self.thresholds_.possible},
            "params": {"l2": self.l2, "top_m": self.top_m, "decay": self.decay, "rounds": self.rounds,
                       "features": list(self.features)},
            "n_pairs": self.n_pairs_,
            "n_relevant": self.n_relevant_,
            "about": getattr(self, "about_", {}),
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "calibration") -> FitCalibrator:
        try:
            if data.get("format") != FORMAT_VERSION:
                raise MatcherError(f"{source}: unknown calibration format {data.get('format')!r}")
            self = cls(**data["params"])
            self.coef_ = np.asarray(data["coef"], dtype=np.float64)
            if any(f not in FEATURES for f in self.features):
                raise MatcherError(f"{source}: unknown feature in {list(self.features)}")
            self.columns_ = np.array([FEATURES.index(f) for f in self.features])
            if self.coef_.shape != (len(self.features) + 1,):
                raise MatcherError(f"{source}: expected {len(self.features) + 1} coefficients, got {len(self.coef_)}")
            self.intercept_ = float(data["intercept"])
            self.thresholds_ = Thresholds(float(data["thresholds"]["strong"]), float(data["thresholds"]["possible"]))
            self.n_pairs_ = int(data["n_pairs"])
            self.n_relevant_ = int(data["n_relevant"])
            self.about_ = dict(data.get("about", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise MatcherError(f"{source}: not a techmatch calibration ({exc})") from exc
        return self

    def save(self, path: str | Path) -> None:
        atomic_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> FitCalibrator:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MatcherError(f"{path}: cannot read the calibration ({exc})") from exc
        return cls.from_dict(data, str(path))

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("FitCalibrator is not fitted: call fit() or load() first")


def default_calibrator() -> FitCalibrator:
    """The file named by TECHMATCH_CALIBRATION (a bureau's own, from `techmatch calibrate --out`),
    else the calibration shipped with techmatch (fitted on the judged demo corpus, see `about`)."""
    own = os.environ.get("TECHMATCH_CALIBRATION")
    if own:
        return FitCalibrator.load(own)
    text = resources.files("matcher.retrieval").joinpath(DEFAULT_RESOURCE).read_text(encoding="utf-8")
    return FitCalibrator.from_dict(json.loads(text), DEFAULT_RESOURCE)


def choose_thresholds(fits, relevant, weight=None) -> Thresholds:
    """possible: the fit that best separates relevant from not (highest F1 of "fit >= t" against
    the judgements); strong: the lowest fit (not below possible) from which at least 70% of the
    pairs within 0.2 above it are relevant, i.e. a pair labelled strong is itself likely
    relevant, not only the pairs far above it. Both on a 0.05 grid."""
    fits, y = np.asarray(fits, np.float64), np.asarray(relevant, np.float64)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    f1 = []
    for t in grid:
        pick = fits >= t
        tp = float(w[pick & (y > 0)].sum())
        f1.append(2 * tp / max(w[pick].sum() + w[y > 0].sum(), 1e-9))
    possible = float(grid[int(np.argmax(f1))])
    strong = possible
    for t in grid[grid >= possible]:
        pick = (fits >= t) & (fits < t + 0.2)
        if pick.sum() >= 10 and float(w[pick] @ y[pick]) / w[pick].sum() >= 0.7:
            strong = float(t)
            break
    else:
        strong = float(min(0.95, possible + 0.3))
    return Thresholds(strong=strong, possible=possible)


def expected_calibration_error(fits, relevant, bins: int = 10) -> float:
    """ECE with equal-width bins: sum over bins of (share of pairs) x |mean fit - share relevant|."""
    fits, y = np.asarray(fits, np.float64), np.asarray(relevant, np.float64)
    if not len(fits):
        return 0.0
    idx = np.minimum((fits * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(fits) * abs(fits[m].mean() - y[m].mean())
    return float(total)


def reliability_table(fits, relevant, bins: int = 10) -> list[tuple[float, float, float, int]]:
    """Per non-empty bin: (bin centre, mean fit, share relevant, pairs)."""
    fits, y = np.asarray(fits, np.float64), np.asarray(relevant, np.float64)
    idx = np.minimum((fits * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append(((b + 0.5) / bins, float(fits[m].mean()), float(y[m].mean()), int(m.sum())))
    return out


def _logistic(
    X: NDArray[np.float64], y: NDArray[np.float64], l2: float, w: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.float64], float]:
    """L2-regularised logistic regression by Newton's method on standardised columns; returns
    coefficients and intercept on the original scale. The intercept is not penalised."""
    w = np.ones(len(y)) if w is None else w
    mu = (w @ X) / w.sum()
    sd = np.sqrt((w @ (X - mu) ** 2) / w.sum())
    sd = np.where(sd > 1e-9, sd, 1.0)
    Z = np.c_[(X - mu) / sd, np.ones(len(X))]
    beta = np.zeros(Z.shape[1])
    penalty = np.r_[np.full(Z.shape[1] - 1, l2), 0.0]
    for _ in range(100):
        p = _sigmoid(Z @ beta)
        grad = Z.T @ (w * (p - y)) + penalty * beta
        hess = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    coef = beta[:-1] / sd
    intercept = beta[-1] - float(coef @ mu)
    return coef, intercept
