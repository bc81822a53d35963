"""The demand landscape: where demands cluster and where partners are missing.

Owns clustering demands into topics (:mod:`.clusters`), naming the clusters (:mod:`.names`),
partner coverage and its calibrated threshold (:mod:`.coverage`), near-duplicate demands and
staff merge/link decisions (:mod:`.duplicates`), the whole :class:`Landscape` built from an
engine (:mod:`.build`) and its HTML/XLSX report (:mod:`.report`). Pure computation; nothing
prints.

May import: the top-level base modules and :mod:`matcher.retrieval`. Not :mod:`matcher.io` or
:mod:`matcher.conference`.
"""

from matcher.landscape.build import Landscape, build_landscape, demand_ids, demand_tokens, demand_vectors
from matcher.landscape.clusters import CLUSTER_METHODS, Clustering, ClusterScore, cluster_demands, crosstab
from matcher.landscape.coverage import (
    CALIBRATED_THRESHOLDS,
    SCORE_KINDS,
    Calibration,
    ClusterCoverage,
    DemandCoverage,
    KindCalibration,
    PartnerScores,
    calibrate_threshold,
    coverage,
    coverage_from_scores,
    default_threshold,
    partner_scores,
    weak_clusters,
)
from matcher.landscape.duplicates import (
    DemandLink,
    DemandLinks,
    DuplicateGroup,
    DuplicatePair,
    DuplicateParams,
    MergedDemand,
    near_duplicates,
)
from matcher.landscape.names import NAME_STOP, ClusterName, name_clusters, surface_forms

__all__ = [
    "CALIBRATED_THRESHOLDS",
    "CLUSTER_METHODS",
    "Calibration",
    "ClusterCoverage",
    "ClusterName",
    "ClusterScore",
    "Clustering",
    "DemandCoverage",
    "DemandLink",
    "DemandLinks",
    "DuplicateGroup",
    "DuplicatePair",
    "DuplicateParams",
    "KindCalibration",
    "Landscape",
    "MergedDemand",
    "NAME_STOP",
    "PartnerScores",
    "SCORE_KINDS",
    "build_landscape",
    "calibrate_threshold",
    "cluster_demands",
    "coverage",
    "coverage_from_scores",
    "crosstab",
    "default_threshold",
    "demand_ids",
    "demand_tokens",
    "demand_vectors",
    "name_clusters",
    "near_duplicates",
    "partner_scores",
    "surface_forms",
    "weak_clusters",
]
