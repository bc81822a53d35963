"""Learned rankers as estimators: `fit(X, y, group, sample_weight)` returns self, `predict(X)` scores.

Two backends:
- "lightgbm": LambdaMART (`objective="lambdarank"`), optimising nDCG directly; LightGBM is an
  optional dependency (`pip install techmatch[learn]`), imported only when used.
- "linear": a pairwise logistic ranker (RankNet with a linear scorer) fitted with
  scikit-learn on standardised feature differences of (better, worse) pairs within a query;
  a pair's weight is the preferred item's sample weight, which is how inverse propensity
  weighting enters (Joachims et al. 2017, propensity-weighted ranking SVM, with a logistic loss).

Either backend can be a *correction of the default order* (`prior="default_score"`): the
model's score is alpha * default_score plus a learned residual, alpha first fitted alone (a
one-feature pairwise logistic ranker: how sure the training pairs say the default order is),
then the residual on top of it (the linear backend's coefficients shrunk towards zero, i.e. the
whole model shrunk towards the default; LightGBM boosting from `init_score` = alpha *
default_score). A residual that learned nothing reproduces the default order exactly, so few,
noisy outcomes can only move the ranking a little, and the model starts at the default's quality.

Saved as a folder: `model.json` (backend, version, feature names, parameters and, for the
linear backend, its coefficients) plus `booster.txt` (LightGBM's own text format). Never pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError, NotFittedError, UnknownNameError
from matcher.fsutil import atomic_text

BACKENDS = ("lightgbm", "linear")
FORMAT_VERSION = 1
MAX_PAIRS_PER_QUERY = 400


def lightgbm_module():
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MatcherError("install techmatch[learn] (LightGBM) to use the lightgbm ranker") from exc
    return lightgbm


def lightgbm_available() -> bool:
    try:
        lightgbm_module()
    except MatcherError:
        return False
    return True


class LearnedRanker:
    """A learning-to-rank model over named features.

    feature_names: the columns of X, in order. Learned state ends in `_`."""

    def __init__(self, feature_names: Sequence[str], backend: str = "lightgbm", *, n_estimators: int = 150,
                 learning_rate: float = 0.05, num_leaves: int = 7, min_child_samples: int = 10,
                 l2: float = 1.0, random_state: int = 0, prior: str | None = None) -> None:
        if backend not in BACKENDS:
            raise UnknownNameError("ranker backend", backend, list(BACKENDS))
        if prior is not None and prior not in feature_names:
            raise MatcherError(f"the prior '{prior}' is not one of the ranker's features")
        self.feature_names = tuple(feature_names)
        self.backend = backend
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.l2 = l2
        self.random_state = random_state
        self.prior = prior

    def params(self) -> dict:
        return {"backend": self.backend, "n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples, "l2": self.l2,
                "random_state": self.random_state, "prior": self.prior}

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: NDArray, y: NDArray, group: Sequence[int], sample_weight: NDArray | None = None
            ) -> LearnedRanker:
        """X: (n, n_features); y: (n,) graded relevance (0 = not relevant); group: query sizes in row
        order, summing to n; sample_weight: (n,) or None."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        group = np.asarray(group, dtype=np.int64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise MatcherError(f"X has {X.shape[-1]} columns, the ranker has {len(self.feature_names)} features")
        if int(group.sum()) != len(X) or len(y) != len(X):
            raise MatcherError("group sizes must sum to the number of rows, and y must have one value a row")
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.prior_weight_ = 0.0
        if self.prior is not None:
            s = X[:, self.feature_names.index(self.prior)]
            better, worse, pw = _pairs(y, group, w, np.random.default_rng(self.random_state))
            self.prior_weight_ = _prior_weight(s[better] - s[worse], pw)
        if self.backend == "lightgbm":
            self._fit_lightgbm(X, y, group, w)
        else:
            self._fit_linear(X, y, group, w)
        self.n_features_in_ = X.shape[1]
        return self

    def _fit_lightgbm(self, X, y, group, w) -> None:
        lgb = lightgbm_module()
        labels = np.clip(np.rint(y), 0, 30).astype(int)
        data = lgb.Dataset(X, label=labels, group=group, weight=w, feature_name=list(self.feature_names),
                           init_score=self._prior_score(X) if self.prior is not None else None,
                           free_raw_data=True)
        params = {"objective": "lambdarank", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                  "min_data_in_leaf": self.min_child_samples, "lambda_l2": self.l2, "verbosity": -1,
                  "seed": self.random_state, "deterministic": True, "num_threads": 1,
                  "lambdarank_truncation_level": 20, "eval_at": [10], "feature_pre_filter": False}
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators)

    def _fit_linear(self, X, y, group, w) -> None:
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 1e-9, X.std(axis=0), 1.0)
        Z = (X - self.mean_) / self.scale_
        better, worse, W = _pairs(y, group, w, np.random.default_rng(self.random_state))
        if len(better) == 0:
            raise MatcherError("no query has both a relevant and a non-relevant target: nothing to learn")
        D = Z[better] - Z[worse]
        if self.prior is not None:
            prior = self._prior_score(X)
            self.coef_ = _residual_logistic(D, prior[better] - prior[worse], W, self.l2)
            return
        from sklearn.linear_model import LogisticRegression

        # Each pair appears in both orientations so the problem is symmetric and needs no intercept.
        model = LogisticRegression(C=1.0 / self.l2, fit_intercept=False, max_iter=1000)
        model.fit(np.vstack([D, -D]), np.r_[np.ones(len(D)), np.zeros(len(D))], sample_weight=np.r_[W, W])
        self.coef_ = model.coef_[0].copy()

    def _prior_score(self, X: NDArray) -> NDArray[np.float64]:
        return self.prior_weight_ * np.asarray(X[:, self.feature_names.index(self.prior)], dtype=np.float64)

    # -- using ---------------------------------------------------------------------------------
    def predict(self, X: NDArray) -> NDArray[np.float64]:
        """(n,) scores; higher is better. Only the order within a query means anything."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise MatcherError(f"X has {X.shape[-1]} columns, the ranker has {len(self.feature_names)} features")
        base = self._prior_score(X) if self.prior is not None else 0.0
        if self.backend == "lightgbm":
            return base + np.asarray(self.booster_.predict(X, num_threads=1), dtype=np.float64)
        return base + ((X - self.mean_) / self.scale_) @ self.coef_

    def importances(self) -> dict[str, float]:
        """Feature weights (linear: standardised coefficients) or LightGBM gain importances, summing to 1
        in absolute value, largest first."""
        self._check_fitted()
        if self.backend == "lightgbm":
            raw = np.asarray(self.booster_.feature_importance(importance_type="gain"), dtype=np.float64)
            signed = raw
        else:
            signed = self.coef_
            raw = np.abs(self.coef_)
        total = float(raw.sum()) or 1.0
        pairs = sorted(zip(self.feature_names, signed / total), key=lambda kv: -abs(kv[1]))
        return {k: float(v) for k, v in pairs}

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_") and not hasattr(self, "coef_"):
            raise NotFittedError("this ranker is not fitted yet: call fit(X, y, group) first")

    # -- files ---------------------------------------------------------------------------------
    def save(self, folder: str | Path, meta: dict | None = None) -> None:
        """Write `model.json` (and `booster.txt` for LightGBM) into `folder`."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT_VERSION, "features": list(self.feature_names), "params": self.params(),
               "meta": meta or {}}
        if self.prior is not None:
            doc["prior_weight"] = self.prior_weight_
        if self.backend == "lightgbm":
            atomic_text(folder / "booster.txt", self.booster_.model_to_string())
        else:
            doc["linear"] = {"mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "coef": self.coef_.tolist()}
        atomic_text(folder / "model.json", json.dumps(doc, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> LearnedRanker:
        folder = Path(folder)
        try:
            doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise MatcherError(f"{folder} holds no ranker (no model.json)") from exc
        if doc.get("format") != FORMAT_VERSION:
            raise MatcherError(f"{folder / 'model.json'}: unknown model format {doc.get('format')!r}")
        params = dict(doc["params"])
        self = cls(doc["features"], **params)
        if self.backend == "lightgbm":
            lgb = lightgbm_module()
            self.booster_ = lgb.Booster(model_str=(folder / "booster.txt").read_text(encoding="utf-8"))
        else:
            lin = doc["linear"]
            self.mean_, self.scale_, self.coef_ = (np.asarray(lin[k], dtype=np.float64)
                                                   for k in ("mean", "scale", "coef"))
        self.prior_weight_ = float(doc.get("prior_weight", 0.0))
        self.n_features_in_ = len(self.feature_names)
        self.meta_ = doc.get("meta", {})
        return self


def _pairs(y: NDArray, group: NDArray, w: NDArray, rng: np.random.Generator
           ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(better rows, worse rows, weights) of the preference pairs within each query (at most
    MAX_PAIRS_PER_QUERY a query); a pair weighs what its preferred row weighs."""
    better_all, worse_all = [], []
    start = 0
    for g in group:
        yy = y[start:start + g]
        better, worse = np.nonzero(yy[:, None] > yy[None, :])
        if len(better) > MAX_PAIRS_PER_QUERY:
            keep = rng.choice(len(better), MAX_PAIRS_PER_QUERY, replace=False)
            better, worse = better[keep], worse[keep]
        better_all.append(better + start)
        worse_all.append(worse + start)
        start += int(g)
    b = np.concatenate(better_all).astype(np.int64) if better_all else np.zeros(0, np.int64)
    v = np.concatenate(worse_all).astype(np.int64) if worse_all else np.zeros(0, np.int64)
    return b, v, np.asarray(w, dtype=np.float64)[b]


def _prior_weight(diff: NDArray, weight: NDArray, ridge: float = 1.0) -> float:
    """alpha of P(better beats worse) = sigmoid(alpha * diff): a one-feature pairwise logistic fit
    (Newton steps, a small ridge so that perfectly separated pairs stay finite), never below 0."""
    if len(diff) == 0:
        return 0.0
    d, w = np.asarray(diff, np.float64), np.asarray(weight, np.float64)
    a = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(np.clip(a * d, -50, 50)))  # P(the pair is mis-ordered)
        grad = -(w * p * d).sum() + ridge * a
        hess = (w * p * (1 - p) * d * d).sum() + ridge
        step = grad / hess
        a -= step
        if abs(step) < 1e-6 * max(1.0, abs(a)):
            break
    return float(max(a, 0.0))


def _residual_logistic(D: NDArray, offset: NDArray, weight: NDArray, l2: float) -> NDArray[np.float64]:
    """Coefficients w minimising sum weight * log(1 + exp(-(offset + D w))) + l2/2 |w|^2: a pairwise
    logistic ranker on top of a fixed prior score (offset: its difference on each pair)."""
    from scipy.optimize import minimize

    def loss(coef):
        m = offset + D @ coef
        lo = np.logaddexp(0.0, -m)
        p = np.exp(-np.logaddexp(0.0, m))  # sigmoid(-m)
        return float((weight * lo).sum() + 0.5 * l2 * coef @ coef), -(D.T @ (weight * p)) + l2 * coef

    res = minimize(loss, np.zeros(D.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(res.x, dtype=np.float64)
