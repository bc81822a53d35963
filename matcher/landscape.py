"""The demand landscape: topic clusters, partner coverage, weak directions, near-duplicates.

Pure computation on top of a fitted :class:`~matcher.engine.MatchEngine`; nothing prints.

    clustering = cluster_demands(vectors)                       # method and k by silhouette
    names = name_clusters(tokens, clustering.labels, ...)       # c-TF-IDF terms per cluster
    cal = calibrate_threshold(engine, task)                     # on judged demands
    cov = coverage(engine, demands, cal.threshold, kind=cal.kind)
    weak = weak_clusters(clustering.labels, cov)                # size x (1 - covered share)
    groups = near_duplicates(vectors, tokens, ids=ids)          # "duplicate" / "related"
    land = build_landscape(engine, threshold=..., kind=...)     # all of the above at once

Staff decisions on duplicates (merge, link) live in :class:`DemandLinks`, saved as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .errors import MatcherError, NotFoundError, UnknownNameError
from .records import Demand, from_dict, to_dict
from .text import Tokenizer, guess_language

CLUSTER_METHODS = ("kmeans", "agglomerative-average", "agglomerative-ward")
SCORE_KINDS = ("dense", "centred", "lexical", "hybrid", "fused")

# Words of the demand form itself (how to cooperate, what is wanted), never a topic's name.
NAME_STOP = frozenset(
    """合作 合作方 合作方式 联合 联合开发 委托 委托开发 经费 面议 费用 投入 万元 希望 要求 方案 解决
    解决方案 提出 提供 承接 直接 同时 出现 提高 提升 改进 降低 优化 改善 目前 现在 已经 左右 以上 以下
    单位 团队 高校 院所 专家 我们 我厂 我司 本厂 本公司 公司 企业 产品 生产 工艺 项目 情况 效果 问题
    能否 是否 想要 想找 想做 怎么 一些 这个 那个 没有 不够 较高 较低 严重 成本 一是 二是 三是 什么 无法
    不能 只能 大量 不到 办法 解决办法 技术水平 水平 市场 需要 主要 如何 怎样 看看 有时 明显 产生
    结果 发展 整体 逐年 用于 现场 时候 经常 一直 总是 方面 影响 造成 导致 存在 进行 客户 不满意 作为
    全部 分钟 合作开发 建立 一次 实际 其他 部分 帮忙 给出 为主 保持""".split()
)

# Thresholds calibrated on the judged Qiqihar demo corpus (docs/landscape.md), used when a
# run has no judgements of its own. Keyed by (model name, score kind).
CALIBRATED_THRESHOLDS: dict[tuple[str, str], float] = {
    ("e5-multilingual-small", "centred"): 0.0595,  # precision 0.75, recall 0.69, F1 0.72
    ("fake", "lexical"): 0.1366,  # precision 0.65, recall 0.65, F1 0.65 (tests and smoke runs only)
}


# -- engine accessors -----------------------------------------------------------------------
def demand_ids(engine) -> list[str]:
    """Ids of the engine's live demands, in insertion order."""
    coll = engine._dems
    return [i for i in coll.ids if i in coll.row_of]


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


# -- clusters -------------------------------------------------------------------------------
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
    x = _normalise(np.asarray(vectors, dtype=np.float32))
    n = len(x)
    if centre and n >= 3:
        x = _normalise(x - x.mean(axis=0))
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


def _normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


# -- naming ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterName:
    """Distinctive terms of one cluster, in the language most of its demands are written in."""

    cluster: int
    language: str
    terms: tuple[str, ...]

    @property
    def label(self) -> str:
        sep = "、" if self.language == "zh" else ", "
        return sep.join(self.terms[:3])


def surface_forms(texts: Sequence[str]) -> dict[str, str]:
    """Index term -> the word most often written for it ("coat" -> "coating")."""
    stem, word = Tokenizer(), Tokenizer(stem=False)
    seen: dict[str, Counter] = {}
    for text in texts:
        stems, words = stem(text), word(text)
        if len(stems) == len(words):
            for s, w in zip(stems, words):
                if s != w:
                    seen.setdefault(s, Counter())[w] += 1
    return {s: c.most_common(1)[0][0] for s, c in seen.items()}


def name_clusters(
    tokens: Sequence[Sequence[str]],
    labels: NDArray[np.int64],
    *,
    languages: Sequence[str] | None = None,
    surface: Mapping[str, str] | None = None,
    n_terms: int = 6,
    exclude: Collection[str] = (),
) -> list[ClusterName]:
    """Distinctive terms per cluster by class-based TF-IDF over the demands' index terms.

    score(t, c) = (demands of c containing t / |c|) * log(1 + n / demands containing t),
    counting each term once per demand so one long text cannot dominate; a term must occur
    in two demands of its cluster when any does. Terms are taken in
    the script of the cluster's majority language (languages: per-demand ISO codes, guessed
    from the terms when absent), shown as written (`surface`: term -> word), and a term
    inside an already chosen one (or containing it) is skipped ("涂层" after "防腐涂层").
    `exclude`: terms never used (build_landscape passes the words of the county and district
    names: a place says where, not what). Returns one ClusterName per cluster 0..k-1."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if len(tokens) != n:
        raise MatcherError("tokens and labels must have the same length")
    sets = [set(t) for t in tokens]
    df = Counter(t for s in sets for t in s)
    surface = surface or {}
    out = []
    for c in range(int(labels.max()) + 1 if n else 0):
        idx = np.flatnonzero(labels == c)
        langs = [(languages[i] if languages and languages[i] else guess_language(" ".join(tokens[i]))) for i in idx]
        lang = Counter(langs).most_common(1)[0][0] if langs else ""
        cdf = Counter(t for i in idx for t in sets[i])
        scored = [
            ((cdf[t] / len(idx)) * math.log(1 + n / df[t]), t) for t in cdf if _is_name_term(t) and t not in exclude
        ]
        if len(idx) > 1 and any(cdf[t] >= 2 for _, t in scored):
            scored = [(s, t) for s, t in scored if cdf[t] >= 2]
        ranked = [t for _, t in sorted(scored, key=lambda st: (-st[0], -len(st[1]), st[1]))]
        native = [t for t in ranked if _in_script(t, lang)]
        chosen: list[str] = []
        for t in native + [t for t in ranked if t not in native]:
            t = _promote(t, cdf)
            if any(t in u or u in t for u in chosen):
                continue
            chosen.append(t)
            if len(chosen) == n_terms:
                break
        out.append(ClusterName(c, lang, tuple(surface.get(t, t) for t in chosen)))
    return out


def _promote(term: str, cdf: Counter) -> str:
    """A longer word of the cluster that holds most occurrences of `term`, else `term`
    (jieba's search mode also emits sub-words: "化剂" inside "催化剂")."""
    best = max((u for u in cdf if term in u and u != term and _is_name_term(u)), key=lambda u: cdf[u], default=None)
    return best if best is not None and cdf[best] >= 0.6 * cdf[term] else term


def _is_name_term(t: str) -> bool:
    return len(t) > 1 and not t.replace(".", "").isdigit() and t not in NAME_STOP


def _in_script(term: str, lang: str) -> bool:
    script = guess_language(term)
    return script == lang if lang in ("zh", "en", "ru") else True


def crosstab(labels: NDArray[np.int64], values: Sequence[str], k: int) -> tuple[list[str], NDArray[np.int64]]:
    """Counts of demands per (cluster, value): (categories by total desc, (k, n_categories))."""
    totals = Counter(v or "(none)" for v in values)
    cats = sorted(totals, key=lambda v: (-totals[v], v))
    col = {v: j for j, v in enumerate(cats)}
    table = np.zeros((k, len(cats)), dtype=np.int64)
    for lab, v in zip(labels, values):
        table[int(lab), col[v or "(none)"]] += 1
    return cats, table


# -- partner scores and coverage ------------------------------------------------------------
@dataclass(frozen=True)
class PartnerScores:
    """scores: (n_demands, n_partners) float32 for one score kind.

    dense: best cosine between the demand (as a query) and any of the partner's
    capabilities; centred: the same minus the demand's cosine with the mean capability (how
    close the demand is to everything, taken out); lexical: best BM25 over the query's maximum attainable BM25 (0..1);
    hybrid: best of (1 - w) * cosine + w * lexical, w the engine's lexical weight times the
    query's vocabulary coverage; fused: the engine's partner score (per-query normalised,
    so not comparable across demands). Partners outside a demand's candidates get the
    lowest candidate value, an upper bound of their true score."""

    kind: str
    demand_ids: tuple[str, ...]
    partner_ids: tuple[str, ...]
    scores: NDArray[np.float32]


def partner_scores(engine, demands: Sequence[Demand], kinds: Sequence[str] = SCORE_KINDS) -> dict[str, PartnerScores]:
    """Partner scores of every kind for `demands` (encoded once, through the engine's cache)."""
    from .rank import aggregate, fuse

    for kind in kinds:
        if kind not in SCORE_KINDS:
            raise UnknownNameError("score kind", kind, list(SCORE_KINDS))
    partner_of_row = engine.partner_of_capability_rows()
    alive_rows = np.flatnonzero(engine._caps.alive)
    nums = np.unique(partner_of_row[alive_rows])
    col_of = np.full(int(partner_of_row.max()) + 1 if len(partner_of_row) else 0, -1, dtype=np.int64)
    col_of[nums] = np.arange(len(nums))
    pids = tuple(engine.partner_id_of_number(int(p)) for p in nums)
    mats = {kind: np.zeros((len(demands), len(nums)), dtype=np.float32) for kind in kinds}
    if len(demands) and len(nums):
        cands = engine.candidates_batch(list(demands))
        offsets = np.zeros(len(demands), np.float32)
        if "centred" in kinds:
            mean_cap = engine._caps.vectors[alive_rows].mean(axis=0)
            offsets = engine.encoder.encode_queries([d.full_text for d in demands]) @ mean_cap
        w0 = engine.params.fusion.lexical_weight
        for i, c in enumerate(cands):
            cols = col_of[partner_of_row[c.rows]]
            lex = c.lexical / max(c.lexical_scale, 1e-9)
            w = w0 * c.coverage
            per_cap = {
                "dense": c.dense,
                "centred": c.dense - offsets[i],
                "lexical": lex,
                "hybrid": (1 - w) * c.dense + w * lex,
            }
            for kind in kinds:
                if kind == "fused":
                    partners, scores = aggregate(
                        fuse(c, engine.params.fusion), partner_of_row, engine.params.aggregation
                    )
                    row = np.full(len(nums), float(scores.min()) if len(scores) else 0.0, np.float32)
                    row[col_of[partners]] = scores
                else:
                    vals = per_cap[kind].astype(np.float32)
                    row = np.full(len(nums), float(vals.min()) if len(vals) else 0.0, np.float32)
                    best = np.full(len(nums), -np.inf, np.float32)
                    np.maximum.at(best, cols, vals)
                    seen = np.isfinite(best)
                    row[seen] = best[seen]
                mats[kind][i] = row
    ids = tuple(d.id for d in demands)
    return {kind: PartnerScores(kind, ids, pids, mats[kind]) for kind in kinds}


@dataclass(frozen=True)
class KindCalibration:
    """How well one score kind separates relevant (grade >= min_grade) partners from the rest."""

    kind: str
    auc: float  # ROC AUC over all (judged demand, partner) pairs
    threshold: float  # maximises F1
    precision: float
    recall: float
    f1: float
    youden_threshold: float  # maximises TPR - FPR
    youden_j: float
    demand_auc: float  # best score per demand vs "has a relevant partner at all"
    absolute: bool  # comparable across demands (not per-query normalised)


@dataclass(frozen=True)
class Calibration:
    """The chosen score kind and threshold, with every kind's numbers for the record."""

    kind: str
    threshold: float
    precision: float
    recall: float
    f1: float
    n_demands: int
    n_pairs: int
    n_relevant: int
    min_grade: int
    table: tuple[KindCalibration, ...]


def calibrate_threshold(engine, task, *, min_grade: int = 2, kinds: Sequence[str] = SCORE_KINDS) -> Calibration:
    """Choose the score kind and threshold that best separate judged-relevant partners.

    task: anything with `.demands` and `.qrels` (dict demand id -> {partner id: grade}).
    Every partner with capabilities is a candidate for every judged demand (demands in
    qrels, also those with no relevant partner: the gaps); unjudged pairs count as not
    relevant. Per kind: the F1-maximising threshold on the precision-recall curve (set halfway
    to the next lower score), pair-level ROC AUC, Youden's J, and the demand-level AUC of the
    best score against "has any relevant partner". The absolute kind (comparable across
    demands, so not "fused") with the best F1 wins (ties: demand AUC). F1 rewards finding the
    relevant partners without flooding the count with weak ones, which is what "partners above
    threshold" must mean; Youden's J is reported, but on so unbalanced a set (a few relevant
    partners among dozens) it picks thresholds that admit many false ones. "fused" is
    normalised per query, so every demand's best partner scores about 1 and it cannot say
    that a demand is uncovered: it is reported, never chosen."""
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

    qrels = task.qrels
    judged = [d for d in task.demands if d.id in qrels]
    if not any(g >= min_grade for d in judged for g in qrels[d.id].values()):
        raise MatcherError(f"no judged demand has a partner of grade >= {min_grade}: cannot calibrate")
    all_scores = partner_scores(engine, judged, kinds)
    first = all_scores[kinds[0]]
    y = np.array(
        [[qrels.get(did, {}).get(pid, 0) >= min_grade for pid in first.partner_ids] for did in first.demand_ids],
        dtype=bool,
    ).ravel()
    if y.all() or not y.any():
        raise MatcherError("calibration needs both relevant and non-relevant partners")
    has_relevant = y.reshape(len(judged), -1).any(axis=1)
    table = []
    for kind in kinds:
        s = all_scores[kind].scores.ravel().astype(np.float64)
        best_per_demand = all_scores[kind].scores.max(axis=1)
        demand_auc = (
            float(roc_auc_score(has_relevant, best_per_demand))
            if 0 < has_relevant.sum() < len(judged)
            else float("nan")
        )
        prec, rec, thr = precision_recall_curve(y, s)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)[:-1]
        b = int(np.argmax(f1))
        below = s[s < thr[b]]
        # halfway down to the next score, so the cut does not sit on a judged pair's value
        cut = float((thr[b] + below.max()) / 2) if len(below) else float(thr[b])
        fpr, tpr, rthr = roc_curve(y, s)
        j = tpr - fpr
        jb = int(np.argmax(j))
        table.append(
            KindCalibration(
                kind,
                float(roc_auc_score(y, s)),
                cut,
                float(prec[b]),
                float(rec[b]),
                float(f1[b]),
                float(min(rthr[jb], s.max())),
                float(j[jb]),
                demand_auc,
                kind != "fused",
            )
        )
    usable = [t for t in table if t.absolute] or table
    best = max(usable, key=lambda t: (round(t.f1, 6), t.demand_auc))
    return Calibration(
        best.kind,
        best.threshold,
        best.precision,
        best.recall,
        best.f1,
        len(judged),
        int(y.size),
        int(y.sum()),
        min_grade,
        tuple(table),
    )


@dataclass(frozen=True)
class DemandCoverage:
    """How well the known partners meet one demand: best score, partners >= threshold, top 3."""

    demand_id: str
    best_score: float
    n_above: int
    top_partners: tuple[tuple[str, float], ...]

    @property
    def covered(self) -> bool:
        return self.n_above > 0


def coverage(
    engine, demands: Sequence[Demand], threshold: float, *, kind: str = "dense", top: int = 3
) -> list[DemandCoverage]:
    """Per demand: best partner score, number of partners with score >= threshold, best `top`."""
    ps = partner_scores(engine, demands, (kind,))[kind]
    return coverage_from_scores(ps, threshold, top=top)


def coverage_from_scores(ps: PartnerScores, threshold: float, *, top: int = 3) -> list[DemandCoverage]:
    out = []
    for i, did in enumerate(ps.demand_ids):
        row = ps.scores[i]
        order = np.argsort(-row, kind="stable")[:top]
        out.append(
            DemandCoverage(
                did,
                float(row.max()) if len(row) else 0.0,
                int((row >= threshold).sum()),
                tuple((ps.partner_ids[j], float(row[j])) for j in order),
            )
        )
    return out


@dataclass(frozen=True)
class ClusterCoverage:
    """A cluster's coverage. weakness = size x (1 - covered_share) = its uncovered demands."""

    cluster: int
    size: int
    covered_share: float  # demands with at least one partner above threshold
    mean_best: float
    median_above: float
    weakness: float
    flagged: bool


def weak_clusters(
    labels: NDArray[np.int64],
    cov: Sequence[DemandCoverage],
    *,
    min_uncovered: int = 2,
    max_covered_share: float = 0.5,
) -> list[ClusterCoverage]:
    """Clusters ranked weakest first by size x (1 - covered share), ties by lower mean best score.

    Flag rule: at most `max_covered_share` of the cluster's demands have a partner above
    threshold AND at least `min_uncovered` demands are uncovered, i.e. a direction several
    enterprises share that no local partner meets: recruit from outside the city or abroad."""
    labels = np.asarray(labels)
    if len(labels) != len(cov):
        raise MatcherError("labels and coverage must have the same length")
    out = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        idx = np.flatnonzero(labels == c)
        if not len(idx):
            continue
        covered = np.array([cov[i].covered for i in idx])
        share = float(covered.mean())
        uncovered = int((~covered).sum())
        out.append(
            ClusterCoverage(
                c,
                len(idx),
                share,
                float(np.mean([cov[i].best_score for i in idx])),
                float(np.median([cov[i].n_above for i in idx])),
                len(idx) * (1 - share),
                share <= max_covered_share and uncovered >= min_uncovered,
            )
        )
    return sorted(out, key=lambda c: (-c.weakness, c.mean_best, c.cluster))


# -- near-duplicates ------------------------------------------------------------------------
@dataclass(frozen=True)
class DuplicateParams:
    """Thresholds for near-duplicate demands (chosen on hand-made cases, docs/landscape.md).

    The cosine is taken above the corpus baseline: excess = (cos - b) / (1 - b), b the median
    cosine between the demands (0 for fewer than 5), so the same numbers hold for an encoder
    whose cosines all sit near 0.88 (e5) and for one whose unrelated texts sit near 0 (fake).
    The token Jaccard is the second, lexical signal.

    duplicate: excess >= duplicate_excess and Jaccard >= duplicate_jaccard (the same text
    re-filed), or excess >= duplicate_excess_alone (the same text reworded or translated).
    related: excess >= related_excess (the same problem in other words), or excess >=
    related_floor and Jaccard >= related_jaccard (many shared terms, some semantic support)."""

    duplicate_excess: float = 0.85
    duplicate_jaccard: float = 0.5
    duplicate_excess_alone: float = 0.95
    related_excess: float = 0.55
    related_jaccard: float = 0.3
    related_floor: float = 0.3
    baseline: float | None = None  # None: the median pairwise cosine


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    cosine: float
    excess: float
    jaccard: float
    label: str  # "duplicate" or "related"


@dataclass(frozen=True)
class DuplicateGroup:
    """Demands connected by duplicate or related pairs. label "duplicate" when the duplicate
    pairs alone connect all of them, else "related"."""

    ids: tuple[str, ...]
    label: str
    pairs: tuple[DuplicatePair, ...]


def near_duplicates(
    vectors: NDArray[np.float32],
    tokens: Sequence[Sequence[str]],
    *,
    ids: Sequence[str] | None = None,
    params: DuplicateParams | None = None,
    block: int = 1024,
) -> list[DuplicateGroup]:
    """Near-duplicate and related demands, grouped (connected components), largest first.

    vectors: (n, dim) embeddings; tokens: n token lists (sets are compared)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    p = params or DuplicateParams()
    x = _normalise(np.asarray(vectors, dtype=np.float32))
    n = len(x)
    ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    if len(tokens) != n or len(ids) != n:
        raise MatcherError("vectors, tokens and ids must have the same length")
    if n < 2:
        return []
    base = p.baseline if p.baseline is not None else _baseline(x)
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, toks in enumerate(tokens):
        for t in set(toks):
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
    bag = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, max(len(vocab), 1)))
    sizes = np.asarray(bag.sum(axis=1)).ravel()
    pairs: list[DuplicatePair] = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        cos = x[start:stop] @ x.T
        inter = (bag[start:stop] @ bag.T).toarray()
        union = sizes[start:stop, None] + sizes[None, :] - inter
        jac = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        excess = (cos - base) / max(1 - base, 1e-6)
        hit = (excess >= p.related_excess) | ((excess >= p.related_floor) & (jac >= p.related_jaccard))
        hit |= excess >= p.duplicate_excess_alone
        hit |= (excess >= p.duplicate_excess) & (jac >= p.duplicate_jaccard)
        for i, j in zip(*np.nonzero(hit)):
            a, b = start + int(i), int(j)
            if b <= a:
                continue
            e, jj = float(excess[i, j]), float(jac[i, j])
            dup = e >= p.duplicate_excess_alone or (e >= p.duplicate_excess and jj >= p.duplicate_jaccard)
            pairs.append(DuplicatePair(ids[a], ids[b], float(cos[i, j]), e, jj, "duplicate" if dup else "related"))
    if not pairs:
        return []
    pos = {d: i for i, d in enumerate(ids)}

    def components(selected: list[DuplicatePair]) -> NDArray[np.int32]:
        r = [pos[q.a] for q in selected]
        c = [pos[q.b] for q in selected]
        g = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
        return connected_components(g, directed=False)[1]

    comp_all = components(pairs)
    comp_dup = components([q for q in pairs if q.label == "duplicate"])
    groups = []
    for c in np.unique(comp_all[[pos[q.a] for q in pairs]]):
        members = np.flatnonzero(comp_all == c)
        gpairs = tuple(sorted((q for q in pairs if comp_all[pos[q.a]] == c), key=lambda q: (-q.cosine, q.a, q.b)))
        label = (
            "duplicate"
            if len(set(comp_dup[members])) == 1 and any(q.label == "duplicate" for q in gpairs)
            else "related"
        )
        groups.append(DuplicateGroup(tuple(ids[i] for i in members), label, gpairs))
    return sorted(groups, key=lambda g: (g.label != "duplicate", -len(g.ids), -g.pairs[0].cosine, g.ids))


def _baseline(x: NDArray[np.float32], sample: int = 2000, seed: int = 0) -> float:
    """The median cosine between distinct demands (on a sample when there are many)."""
    n = len(x)
    if n < 5:
        return 0.0
    if n > sample:
        x = x[np.random.default_rng(seed).choice(n, sample, replace=False)]
        n = sample
    cos = x @ x.T
    return float(np.median(cos[np.triu_indices(n, 1)]))


# -- staff decisions: merge and link ----------------------------------------------------------
@dataclass(frozen=True)
class MergedDemand:
    """Several demands handled as one. Every original record is kept unchanged."""

    id: str
    primary_id: str
    originals: tuple[Demand, ...]
    note: str = ""
    created: str = ""

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.originals)

    def as_demand(self) -> Demand:
        """One demand for matching: the primary's text, the other texts appended when they
        add anything, and the enterprises and regions of all members in `extra`."""
        primary = next(d for d in self.originals if d.id == self.primary_id)
        texts = [primary.text] + [d.text for d in self.originals if d.id != self.primary_id and d.text != primary.text]
        return Demand(
            id=self.id,
            title=primary.title,
            text="\n".join(t for t in texts if t),
            industry=primary.industry,
            region=primary.region,
            enterprise=primary.enterprise,
            confidential=any(d.confidential for d in self.originals),
            language=primary.language,
            extra={
                "merged_from": ",".join(self.member_ids),
                "enterprises": ";".join(dict.fromkeys(d.enterprise for d in self.originals if d.enterprise)),
                "regions": ";".join(dict.fromkeys(d.region for d in self.originals if d.region)),
            },
        )


@dataclass(frozen=True)
class DemandLink:
    """Two demands staff marked as related (they stay separate)."""

    a: str
    b: str
    note: str = ""
    created: str = ""


@dataclass
class DemandLinks:
    """Staff decisions on near-duplicates: merges and links, saved as JSON.

    A demand belongs to at most one merge; links are unordered pairs."""

    merges: dict[str, MergedDemand] = field(default_factory=dict)
    links: dict[tuple[str, str], DemandLink] = field(default_factory=dict)

    def merge(self, group: Sequence[Demand], *, primary: str | None = None, note: str = "") -> MergedDemand:
        """Merge two or more demands; `primary` (default: the first) gives title and text."""
        ids = [d.id for d in group]
        if len(set(ids)) < 2 or len(set(ids)) != len(ids):
            raise MatcherError("a merge needs two or more distinct demands")
        for did in ids:
            if (m := self.merge_of(did)) is not None:
                raise MatcherError(f"demand '{did}' is already in merge '{m.id}'; unmerge it first")
        primary = primary or ids[0]
        if primary not in ids:
            raise NotFoundError(f"primary '{primary}' is not one of the merged demands")
        merged = MergedDemand(f"merge:{primary}", primary, tuple(group), note, _now())
        self.merges[merged.id] = merged
        return merged

    def unmerge(self, merge_id: str) -> MergedDemand:
        try:
            return self.merges.pop(merge_id)
        except KeyError:
            raise NotFoundError(f"no merge '{merge_id}'") from None

    def merge_of(self, demand_id: str) -> MergedDemand | None:
        return next((m for m in self.merges.values() if demand_id in m.member_ids), None)

    def link(self, a: str, b: str, *, note: str = "") -> DemandLink:
        if a == b:
            raise MatcherError("cannot link a demand to itself")
        key = tuple(sorted((a, b)))
        link = DemandLink(key[0], key[1], note, _now())
        self.links[key] = link
        return link

    def unlink(self, a: str, b: str) -> None:
        if self.links.pop(tuple(sorted((a, b))), None) is None:
            raise NotFoundError(f"no link between '{a}' and '{b}'")

    def linked(self, demand_id: str) -> list[str]:
        return sorted({x for k in self.links for x in k if demand_id in k} - {demand_id})

    # -- persistence
    def to_json(self) -> str:
        data = {
            "version": 1,
            "merges": [
                {
                    "id": m.id,
                    "primary_id": m.primary_id,
                    "note": m.note,
                    "created": m.created,
                    "originals": [to_dict(d) for d in m.originals],
                }
                for m in self.merges.values()
            ],
            "links": [{"a": k.a, "b": k.b, "note": k.note, "created": k.created} for k in self.links.values()],
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DemandLinks:
        try:
            data = json.loads(text)
            out = cls()
            for m in data.get("merges", []):
                originals = tuple(from_dict("demands", d) for d in m["originals"])
                out.merges[m["id"]] = MergedDemand(
                    m["id"], m["primary_id"], originals, m.get("note", ""), m.get("created", "")
                )
            for k in data.get("links", []):
                out.links[tuple(sorted((k["a"], k["b"])))] = DemandLink(
                    k["a"], k["b"], k.get("note", ""), k.get("created", "")
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise MatcherError(f"invalid demand links JSON: {exc}") from None
        return out

    def save(self, path: str | Path) -> None:
        from .fsutil import atomic_text

        atomic_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> DemandLinks:
        path = Path(path)
        if not path.exists():
            return cls()
        return cls.from_json(path.read_text(encoding="utf-8"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    kind = kind or "dense"
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


def default_threshold(model: str, kind: str) -> float:
    """The threshold calibrated on the demo corpus for (model, kind); an error when unknown."""
    value = CALIBRATED_THRESHOLDS.get((model, kind))
    if value is None:
        known = [f"{m}/{k}" for m, k in CALIBRATED_THRESHOLDS] or ["none"]
        raise MatcherError(
            f"no calibrated threshold for model '{model}' and score '{kind}' (known: {', '.join(known)}); "
            "give a threshold, or judged demands (qrels) to calibrate one"
        )
    return value
