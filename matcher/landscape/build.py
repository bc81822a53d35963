"""The demand landscape: topic clusters, partner coverage, weak directions, near-duplicates.

Pure computation on top of a fitted :class:`~matcher.retrieval.engine.MatchEngine`; nothing prints.

    clustering = cluster_demands(vectors)                       # method and k by silhouette
    names = name_clusters(tokens, clustering.labels, ...)       # c-TF-IDF terms per cluster
    cal = calibrate_threshold(engine, task)                     # on judged demands
    cov = coverage(engine, demands, cal.threshold, kind=cal.kind)
    weak = weak_clusters(clustering.labels, cov)                # size x (1 - covered share)
    groups = near_duplicates(vectors, tokens, ids=ids)          # "duplicate" / "related"
    land = build_landscape(engine, threshold=..., kind=...)     # all of the above at once

Staff decisions on duplicates (merge, link) live in :class:`DemandLinks`, saved as JSON.

This module reads the engine's demands and builds the whole :class:`Landscape`; the parts
live in `clusters` (clustering), `names` (naming), `coverage`
(partner scores, calibration, coverage) and `duplicates` (near-duplicates, merges
and links); the package :mod:`matcher.landscape` re-exports every part's names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import MatcherError, NotFoundError
from matcher.landscape.clusters import CLUSTER_METHODS, Clustering, cluster_demands
from matcher.landscape.coverage import (
    Calibration,
    ClusterCoverage,
    DemandCoverage,
    coverage,
    default_threshold,
    weak_clusters,
)
from matcher.landscape.duplicates import DuplicateGroup, DuplicateParams, near_duplicates
from matcher.landscape.names import ClusterName, name_clusters, surface_forms
from matcher.records import Demand
from matcher.retrieval.text import Tokenizer, guess_language

__all__ = ["Landscape", "build_landscape", "demand_ids", "demand_tokens", "demand_vectors"]


# -- engine accessors -----------------------------------------------------------------------
def demand_ids(engine) -> list[str]:
    """Ids of the engine's live demands, each once, in the order they were last indexed."""
    return engine._dems.live_ids()


def demand_vectors(engine, ids: Sequence[str]) -> NDArray[np.float32]:
    """(len(ids), dim) float32 document embeddings of indexed demands (no encoding)."""
    coll = engine._dems
    try:
        rows = [coll.row_of[i] for i in ids]
    except KeyError as exc:
        raise NotFoundError(f"demand '{exc.args[0]}' is not indexed") from None
    return np.asarray(coll.vectors[rows], dtype=np.float32).reshape(len(rows), coll.dim)


def demand_tokens(engine, ids: Sequence[str]) -> list[list[str]]:
    """The engine's index terms (stems for en/ru, jieba words for zh) of indexed demands."""
    coll = engine._dems
    try:
        return [list(coll.tokens[coll.row_of[i]]) for i in ids]
    except KeyError as exc:
        raise NotFoundError(f"demand '{exc.args[0]}' is not indexed") from None


# -- everything at once -----------------------------------------------------------------------
@dataclass(frozen=True)
class Landscape:
    """The whole view, ready for a report. Sequences are aligned with `demands`."""

    model: str
    demands: tuple[Demand, ...]
    clustering: Clustering
    names: tuple[ClusterName, ...]
    coverage: tuple[DemandCoverage, ...]
    clusters: tuple[ClusterCoverage, ...]  # weakest first
    duplicates: tuple[DuplicateGroup, ...]
    score_kind: str
    threshold: float
    calibration: Calibration | None
    partner_names: dict[str, str]
    partner_regions: dict[str, str]

    def members(self, cluster: int) -> list[Demand]:
        return [self.demands[i] for i in self.clustering.members(cluster)]


def build_landscape(
    engine,
    demands: Sequence[Demand] | None = None,
    *,
    threshold: float | None = None,
    kind: str | None = None,
    calibration: Calibration | None = None,
    k_range: Sequence[int] = range(4, 25),
    methods: Sequence[str] = CLUSTER_METHODS,
    duplicates: DuplicateParams | None = None,
    seed: int = 0,
) -> Landscape:
    """Clusters, names, coverage, weak clusters and duplicate groups of indexed demands.

    demands default to all the engine's demands (they must be indexed: their vectors and
    tokens are read, not recomputed). The threshold and kind come from `calibration`
    unless given; with neither, the value calibrated on the demo corpus for this model."""
    if demands is None:
        demands = [engine.demands[i] for i in demand_ids(engine)]
    demands = tuple(demands)
    if not demands:
        raise MatcherError("no demands to map")
    if calibration is not None:
        kind = kind or calibration.kind
        threshold = calibration.threshold if threshold is None else threshold
    kind = kind or "fit"
    if threshold is None:
        threshold = default_threshold(engine.encoder.name, kind)
    ids = [d.id for d in demands]
    vectors = demand_vectors(engine, ids)
    tokens = demand_tokens(engine, ids)
    clustering = cluster_demands(vectors, k_range=k_range, methods=methods, seed=seed)
    names = name_clusters(
        tokens,
        clustering.labels,
        languages=[d.language or guess_language(d.full_text) for d in demands],
        surface=surface_forms([d.full_text for d in demands]),
        exclude=_place_terms(d.region for d in demands),
    )
    cov = coverage(engine, demands, threshold, kind=kind)
    clusters = weak_clusters(clustering.labels, cov)
    groups = near_duplicates(vectors, tokens, ids=ids, params=duplicates)
    return Landscape(
        model=engine.encoder.name,
        demands=demands,
        clustering=clustering,
        names=tuple(names),
        coverage=tuple(cov),
        clusters=tuple(clusters),
        duplicates=tuple(groups),
        score_kind=kind,
        threshold=float(threshold),
        calibration=calibration,
        partner_names={p: engine.partners[p].name if p in engine.partners else p for p in engine.partners},
        partner_regions={p: engine.partners[p].region for p in engine.partners},
    )


def _place_terms(regions) -> set[str]:
    """Index terms of place names: "泰来县" -> {"泰来县", "泰来"}, "Longsha District" -> {"longsha", ...}."""
    tok = Tokenizer()
    out: set[str] = set()
    for region in set(regions):
        if region:
            out.update(tok(region))
            out.update(tok(re.sub(r"(县|区|市|镇|乡|旗)$", "", region)))
    return out
