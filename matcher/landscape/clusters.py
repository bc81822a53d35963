"""Clustering demands: method and k chosen by the cosine silhouette, clusters numbered by size.

Also the counts of demands per cluster and category (industry, region) that the report shows.

    clustering = cluster_demands(vectors)          # Clustering: labels, method, k, every score tried
    cats, table = crosstab(clustering.labels, industries, clustering.k)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import UnknownNameError

CLUSTER_METHODS = ("kmeans", "agglomerative-average", "agglomerative-ward")


@dataclass(frozen=True)
class ClusterScore:
    """One candidate clustering: silhouette (cosine, -1..1) and the share of the largest cluster."""

    method: str
    k: int
    silhouette: float
    largest_share: float
    eligible: bool  # False when one cluster swallows more than `max_share` of the demands


@dataclass(frozen=True)
class Clustering:
    """labels: (n,) int64 in 0..k-1, cluster 0 the largest. `scores` is every candidate tried."""

    labels: NDArray[np.int64]
    method: str
    k: int
    silhouette: float
    scores: tuple[ClusterScore, ...]

    def members(self, cluster: int) -> NDArray[np.intp]:
        return np.flatnonzero(self.labels == cluster)


def cluster_demands(
    vectors: NDArray[np.float32],
    *,
    k_range: Sequence[int] = range(4, 25),
    methods: Sequence[str] = CLUSTER_METHODS,
    seed: int = 0,
    max_share: float = 0.5,
    sample_size: int = 3000,
    centre: bool = True,
) -> Clustering:
    """Cluster (n, dim) embeddings, choosing method and k by the cosine silhouette.

    With `centre`, the demands' mean vector is subtracted first: a model's embeddings share a
    common direction (e5: cosines between any two Chinese demands sit around 0.88), and taking
    it out lets the cosine see what differs. Every (method, k) in methods x k_range (k clipped
    to 2..n-1) is fitted on the L2-normalised vectors; the eligible candidate with the best
    silhouette wins (ties: smaller k). A candidate whose largest cluster holds more than
    `max_share` of the demands is reported but not eligible (average linkage likes one giant
    cluster plus outliers). Fewer than 3 demands give a single cluster."""
    for m in methods:
        if m not in CLUSTER_METHODS:
            raise UnknownNameError("cluster method", m, list(CLUSTER_METHODS))
    x = normalise_rows(np.asarray(vectors, dtype=np.float32))
    n = len(x)
    if centre and n >= 3:
        x = normalise_rows(x - x.mean(axis=0))
    ks = sorted({int(k) for k in k_range if 2 <= int(k) <= n - 1})
    if n < 3 or not ks:
        return Clustering(np.zeros(n, np.int64), "single", 1 if n else 0, float("nan"), ())
    from sklearn.metrics import silhouette_score

    scores: list[ClusterScore] = []
    best: tuple[float, int, str, NDArray[np.int64]] | None = None
    for method in methods:
        if method.startswith("agglomerative") and n > 5000:
            continue  # quadratic memory; k-means scales
        for k in ks:
            labels = _fit_labels(method, k, x, seed)
            if len(np.unique(labels)) < 2:
                continue
            sil = float(
                silhouette_score(x, labels, metric="cosine", sample_size=min(n, sample_size), random_state=seed)
            )
            share = float(np.bincount(labels).max() / n)
            eligible = share <= max_share or n < 20
            scores.append(ClusterScore(method, k, sil, share, eligible))
            if eligible and (best is None or sil > best[0] + 1e-9):
                best = (sil, k, method, labels)
    if best is None:  # nothing eligible: take the best silhouette regardless
        top = max(scores, key=lambda s: s.silhouette)
        best = (top.silhouette, top.k, top.method, _fit_labels(top.method, top.k, x, seed))
    sil, k, method, labels = best
    return Clustering(_by_size(labels), method, k, sil, tuple(scores))


def _fit_labels(method: str, k: int, x: NDArray[np.float32], seed: int) -> NDArray[np.int64]:
    from sklearn.cluster import AgglomerativeClustering, KMeans

    if method == "kmeans":
        model = KMeans(n_clusters=k, n_init=10, random_state=seed)
    elif method == "agglomerative-average":
        model = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average")
    else:
        model = AgglomerativeClustering(n_clusters=k, linkage="ward")
    return np.asarray(model.fit_predict(x), dtype=np.int64)


def _by_size(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Renumber clusters by size, largest first (ties: first appearance)."""
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    new = np.empty(int(uniq.max()) + 1, dtype=np.int64)
    for rank, i in enumerate(order):
        new[uniq[i]] = rank
    return new[labels]


def normalise_rows(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def crosstab(labels: NDArray[np.int64], values: Sequence[str], k: int) -> tuple[list[str], NDArray[np.int64]]:
    """Counts of demands per (cluster, value): (categories by total desc, (k, n_categories))."""
    totals = Counter(v or "(none)" for v in values)
    cats = sorted(totals, key=lambda v: (-totals[v], v))
    col = {v: j for j, v in enumerate(cats)}
    table = np.zeros((k, len(cats)), dtype=np.int64)
    for lab, v in zip(labels, values):
        table[int(lab), col[v or "(none)"]] += 1
    return cats, table
