"""Position bias: how likely staff are to follow up a suggestion at each rank, and the inverse
propensity weights that undo it.

Why this propensity model. A bureau's log records, for every list shown (impressions), which
pairs staff then contacted (the pipeline status `contacted` or later). Contacting is the
examination step of the position-based click model: staff work down the list and contact the
first few; whether a contacted pair then becomes a meeting or an agreement is what relevance
decides. So the examination probability at rank r is observed directly as the share of shown
pairs at rank r that were contacted; no randomised swaps or EM are needed as they are for web
clicks, where examination is hidden. The raw shares are noisy at the tail (few contacts), so we
fit a power law p(r) = p1 * r^-eta to them (weighted least squares on logs, the form measured in
eye-tracking and intervention-harvesting studies of ranked lists) and clip the inverse weights
at `max_weight` to bound the variance the rare deep contacts would add.

Rows that were contacted and succeeded are the positives of the learning problem; weighting
each by 1 / p(rank) makes the expected loss equal the loss under full examination (Joachims,
Swaminathan and Schnabel 2017). Rows that were never contacted are unlabelled negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MIN_SHOWN = 5  # ranks shown fewer times than this do not enter the fit


@dataclass(frozen=True)
class Propensity:
    """p(r) = min(1, p1 * r^-eta): the chance a suggestion shown at rank r (1-based) is followed up."""

    p1: float = 1.0
    eta: float = 1.0
    max_weight: float = 20.0

    def __call__(self, ranks: NDArray | Sequence[int]) -> NDArray[np.float64]:
        r = np.maximum(np.asarray(ranks, dtype=np.float64), 1.0)
        return np.clip(self.p1 * r ** (-self.eta), 1e-6, 1.0)

    def weights(self, ranks: NDArray | Sequence[int]) -> NDArray[np.float64]:
        """Inverse propensity relative to rank 1, clipped at max_weight."""
        p = self(ranks)
        return np.minimum(self(np.ones(1))[0] / p, self.max_weight)


def estimate(ranks: Sequence[int], followed: Sequence[bool], *, max_weight: float = 20.0) -> Propensity:
    """Fit p(r) from the log: `ranks` of shown suggestions (1-based) and whether each was followed up."""
    r = np.asarray(ranks, dtype=np.int64)
    f = np.asarray(followed, dtype=bool)
    if len(r) == 0 or not f.any():
        return Propensity(max_weight=max_weight)
    shown = np.bincount(r, minlength=r.max() + 1).astype(float)
    hit = np.bincount(r[f], minlength=r.max() + 1).astype(float)
    ks = np.flatnonzero((shown >= MIN_SHOWN) & (hit > 0))
    ks = ks[ks >= 1]
    if len(ks) < 2:
        rate = float(hit.sum() / max(shown.sum(), 1))
        return Propensity(p1=min(1.0, rate), eta=0.0, max_weight=max_weight)
    rate = hit[ks] / shown[ks]
    w = shown[ks] * rate  # more contacts, smaller relative error of the log rate
    A = np.c_[np.ones(len(ks)), -np.log(ks)]
    coef, *_ = np.linalg.lstsq(A * np.sqrt(w)[:, None], np.log(rate) * np.sqrt(w), rcond=None)
    return Propensity(p1=float(min(1.0, np.exp(coef[0]))), eta=float(max(0.0, coef[1])), max_weight=max_weight)
