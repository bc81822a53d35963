"""Features of (query, target) pairs: the one place a learned ranker's inputs are computed.

Every feature has a name (`FEATURES`: all this version can compute); a model file stores the
names it was trained on, and the engine hook (`table.Reranker`) builds the columns that model
needs, so a feature added later is one more name and one more function here, and older models
keep working.

Two sets: the 30 `BASE_FEATURES`, what a model is trained on unless asked otherwise, and the
seven `EVIDENCE_FEATURES` (ranks, raw gaps, title, phrase and window overlap of the best
capability), opt-in (`techmatch learn cv|simulate|train --evidence`, `build_table(...,
evidence=True)`): they scan the best capability's tokens of every re-ranked partner, a few
milliseconds a served list at 42k capabilities (`benchmarks/bench_learning.py`), so the engine
hook computes them only for a model that was trained on them.

Targets are partners (level "partner", the capabilities of one partner aggregated) or single
capabilities (level "capability"). Everything is computed from what the engine already has
for a query: its candidates with raw and normalised dense and lexical scores, the default
partner order, the records' industries and regions, and the outcome history.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from matcher.records import Demand
from matcher.retrieval.collection import Candidates
from matcher.retrieval.rank import Fused

# Names, in the column order of a feature matrix built without the evidence features.
BASE_FEATURES: tuple[str, ...] = (
    "default_score",  # the unlearned engine's score (aggregated partner score / fused capability score)
    "default_rank_inv",  # 1 / the target's rank in the default order
    "best_fused",  # best capability's fused score
    "best_dense_norm",  # its min-max scaled, language-standardised dense score (0..1)
    "best_lexical_norm",  # its BM25 divided by the query's best BM25 (0..1)
    "best_dense",  # its raw cosine
    "best_centred",  # its language-standardised cosine
    "best_lexical",  # its raw BM25
    "max_lexical_norm",  # best lexical evidence over all the target's candidate capabilities
    "mean_top3_fused",  # mean fused score of the target's three best capabilities
    "support",  # default score minus best capability (what breadth added)
    "n_candidate_caps",  # how many of the target's capabilities are among the candidates
    "n_matching_caps",  # how many stand above the query's median candidate
    "partner_size_log",  # log(1 + number of the partner's capabilities)
    "matching_share",  # n_matching_caps / partner size
    "term_overlap",  # idf-weighted share of the query's terms found in the best capability
    "query_coverage",  # share of query tokens the corpus vocabulary knows
    "lexical_weight",  # how much lexical evidence counted for this query
    "query_terms_log",  # log(1 + number of query tokens)
    "industry_match",  # the demand's industry is among the target's capabilities' industries
    "region_match",  # demand and partner in the same city or district
    "type_university",
    "type_institute",
    "type_team",
    "type_enterprise",
    "foreign",  # the partner's country is known and is not China
    "past_outcomes_log",  # log(1 + outcomes recorded for the partner on other demands)
    "acceptance_rate",  # smoothed share of those outcomes that went beyond contact
    "contract_rate",  # smoothed share that ended in a cooperation agreement
    "busy_log",  # log(1 + pairs open with the partner right now)
)
# Evidence the fused score blends away or never sees (best capability; no encoder, but a scan of its
# tokens per target): opt-in, appended after BASE_FEATURES when asked for.
EVIDENCE_FEATURES: tuple[str, ...] = (
    "dense_rank_inv",  # 1 / its rank by cosine among the query's candidates
    "lexical_rank_inv",  # 1 / its rank by BM25 among them
    "dense_gap_top",  # the query's best cosine minus its cosine (raw, not min-max scaled)
    "lexical_attained",  # its BM25 over the query's maximum attainable BM25 (an absolute scale)
    "title_overlap",  # idf-weighted share of the query's terms found in its title
    "bigram_overlap",  # share of the query's adjacent term pairs found adjacent in it (phrases)
    "window_overlap",  # best idf-weighted share of the query's terms within one window of its text
)
FEATURES: tuple[str, ...] = BASE_FEATURES + EVIDENCE_FEATURES  # every name this version can compute
WINDOW = 24  # tokens: about one sentence, the span `window_overlap` looks for the query's terms in
TITLE_CACHE = 50_000  # capabilities whose title terms are kept between requests
DOMESTIC = frozenset({"cn", "china", "中国", "prc"})
RATE_PRIOR = 2.0  # pseudo-outcomes behind a rate: a partner with one outcome is not 0% or 100%


def feature_names(evidence: bool = False) -> tuple[str, ...]:
    """The columns of a feature table: BASE_FEATURES, then EVIDENCE_FEATURES when `evidence`."""
    return FEATURES if evidence else BASE_FEATURES


def uses_evidence(names: Sequence[str]) -> bool:
    """Whether a model trained on `names` needs the evidence features computed."""
    return any(n in EVIDENCE_FEATURES for n in names)


@dataclass
class PartnerHistory:
    """A partner's outcomes so far: counts of pairs that reached each stage."""

    outcomes: int = 0  # pairs with a final or intermediate outcome recorded
    accepted: int = 0  # pairs that got to a meeting or further
    contracts: int = 0  # pairs that ended in a cooperation agreement
    open_pairs: int = 0  # pairs contacted and not yet closed


@dataclass
class History:
    """Outcome counts by partner, and by (partner, demand) so a demand's own outcomes can be left
    out of its features (they are its label)."""

    by_partner: dict[str, PartnerHistory] = field(default_factory=dict)
    by_pair: dict[tuple[str, str], PartnerHistory] = field(default_factory=dict)
    prior_accept: float = 0.3
    prior_contract: float = 0.1

    def add(self, demand_id: str, partner_id: str, *, accepted: bool, contract: bool, open_: bool = False) -> None:
        for h in (self.by_partner.setdefault(partner_id, PartnerHistory()),
                  self.by_pair.setdefault((partner_id, demand_id), PartnerHistory())):
            h.outcomes += 1
            h.accepted += int(accepted)
            h.contracts += int(contract)
            h.open_pairs += int(open_)

    def features(self, partner_id: str, demand_id: str | None) -> tuple[float, float, float, float]:
        """(past_outcomes_log, acceptance_rate, contract_rate, busy_log) without this demand's own pair."""
        h = self.by_partner.get(partner_id)
        if h is None:
            return 0.0, self.prior_accept, self.prior_contract, 0.0
        n, a, c, o = h.outcomes, h.accepted, h.contracts, h.open_pairs
        own = self.by_pair.get((partner_id, demand_id)) if demand_id is not None else None
        if own is not None:
            n, a, c, o = n - own.outcomes, a - own.accepted, c - own.contracts, o - own.open_pairs
        return (math.log1p(n), (a + RATE_PRIOR * self.prior_accept) / (n + RATE_PRIOR),
                (c + RATE_PRIOR * self.prior_contract) / (n + RATE_PRIOR), math.log1p(max(o, 0)))


@dataclass(frozen=True)
class QueryView:
    """One query as the features see it: the candidates, their fusion, the default order."""

    demand: Demand | None
    tokens: Sequence[str]
    cand: Candidates
    fused: Fused
    targets: NDArray[np.int64]  # partner numbers (or candidate positions at capability level), default order
    scores: NDArray[np.float32]  # their default scores


class CorpusFacts:
    """Per-corpus facts the features need (partner sizes, industries), computed once per engine state;
    capabilities' title terms are computed when first needed and kept, by collection row (an
    edited capability gets a new row, so nothing kept goes stale)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.size = Counter(c.partner_id for c in engine.capabilities.values())
        self.stamp = len(engine.capabilities)
        self._titles: dict[int, frozenset[str]] = {}

    def current(self) -> bool:
        return self.stamp == len(self.engine.capabilities)

    def title_terms(self, row: int) -> frozenset[str]:
        terms = self._titles.get(row)
        if terms is None:
            if len(self._titles) >= TITLE_CACHE:
                self._titles.clear()
            cap = self.engine.capabilities.get(self.engine.capability_id_of_row(row))
            terms = self._titles[row] = frozenset(self.engine.tokenizer(cap.title) if cap and cap.title else ())
        return terms


@dataclass
class _QueryStats:
    """What every target of one query shares: computed once per query."""

    median: float
    idf: dict[str, float]
    common: tuple[float, float, float]
    evidence: _EvidenceStats | None  # None: the evidence features are not computed

    @classmethod
    def of(cls, engine, view: QueryView, evidence: bool) -> _QueryStats:
        fused, cand = view.fused, view.cand
        return cls(float(np.median(fused.score)) if len(fused.score) else 0.0,
                   engine.capability_term_idf(view.tokens), _query_features(view, cand, fused),
                   _EvidenceStats.of(view) if evidence else None)


@dataclass
class _EvidenceStats:
    """What the evidence features of one query's targets share."""

    dense_rank: NDArray[np.int64]  # 1-based rank of each candidate by cosine
    lexical_rank: NDArray[np.int64]
    dense_top: float
    lexical_scale: float
    bigrams: list[tuple[str, str]]
    terms: frozenset[str]  # the query's distinct tokens

    @classmethod
    def of(cls, view: QueryView) -> _EvidenceStats:
        cand = view.cand
        toks = list(view.tokens)
        return cls(_ranks(cand.dense), _ranks(cand.lexical), float(cand.dense.max()) if len(cand.dense) else 0.0,
                   float(cand.lexical_scale), sorted({(a, b) for a, b in zip(toks, toks[1:]) if a != b}),
                   frozenset(toks))


def partner_table(engine, facts: CorpusFacts, view: QueryView, n: int, history: History | None,
                  evidence: bool = False) -> tuple[list[str], NDArray[np.float32]]:
    """Features of the first `n` partners of the default order: (partner ids, (n, columns)), the
    columns `feature_names(evidence)`."""
    por = engine.partner_of_capability_rows()
    fused = view.fused
    pnum = por[fused.rows]
    stats = _QueryStats.of(engine, view, evidence)
    ids: list[str] = []
    rows: list[list[float]] = []
    for rank, (p, score) in enumerate(zip(view.targets[:n], view.scores[:n]), start=1):
        pos = np.flatnonzero(pnum == p)
        pos = pos[np.argsort(-fused.score[pos], kind="stable")]
        pid = engine.partner_id_of_number(int(p))
        partner = engine.partners.get(pid)
        size = facts.size.get(pid, len(pos))
        ids.append(pid)
        rows.append(_target_row(engine, facts, view, stats, pos, float(score), rank, size, partner, history, pid))
    return ids, np.asarray(rows, dtype=np.float32).reshape(len(rows), len(feature_names(evidence)))


def capability_table(engine, facts: CorpusFacts, view: QueryView, n: int, history: History | None,
                     evidence: bool = False) -> tuple[list[str], NDArray[np.float32]]:
    """Features of the first `n` capabilities of the default order (targets are candidate positions),
    the columns `feature_names(evidence)`."""
    fused = view.fused
    stats = _QueryStats.of(engine, view, evidence)
    ids, rows = [], []
    for rank, (i, score) in enumerate(zip(view.targets[:n], view.scores[:n]), start=1):
        cid = engine.capability_id_of_row(int(fused.rows[i]))
        cap = engine.capabilities[cid]
        partner = engine.partners.get(cap.partner_id)
        ids.append(cid)
        rows.append(_target_row(engine, facts, view, stats, np.array([int(i)]), float(score), rank,
                                facts.size.get(cap.partner_id, 1), partner, history, cap.partner_id))
    return ids, np.asarray(rows, dtype=np.float32).reshape(len(rows), len(feature_names(evidence)))


def _query_features(view: QueryView, cand: Candidates, fused: Fused) -> tuple[float, float, float]:
    return float(cand.coverage), float(fused.lexical_weight), math.log1p(len(view.tokens))


def _target_row(engine, facts: CorpusFacts, view: QueryView, stats: _QueryStats, pos, score, rank, size, partner,
                history, pid) -> list[float]:
    fused, cand = view.fused, view.cand
    median, idf = stats.median, stats.idf
    best = int(pos[0]) if len(pos) else None
    centred = cand.centred
    top3 = fused.score[pos[:3]] if len(pos) else np.zeros(1, np.float32)
    matching = int((fused.score[pos] > median).sum()) if len(pos) else 0
    best_fused = float(fused.score[best]) if best is not None else 0.0
    demand = view.demand
    industries: set[str] = set()
    for i in pos[:5]:
        industries.update(engine.capabilities[engine.capability_id_of_row(int(fused.rows[int(i)]))].industries)
    industry_match = float(bool(demand and demand.industry and demand.industry in industries))
    region_match = float(bool(demand and partner and _same_place(demand.region, partner.region)))
    ptype = partner.type if partner else ""
    country = (partner.country if partner else "").strip().lower()
    hist = (history or _NO_HISTORY).features(pid, demand.id if demand else None)
    overlap = (_term_overlap(view.tokens, engine.capability_tokens(int(fused.rows[best])), idf)
               if best is not None else 0.0)
    evidence = _evidence(engine, facts, stats, cand, fused, best) if stats.evidence is not None else ()
    return [
        score, 1.0 / rank, best_fused,
        float(fused.dense_norm[best]) if best is not None else 0.0,
        float(fused.lexical_norm[best]) if best is not None else 0.0,
        float(cand.dense[best]) if best is not None else 0.0,
        float(centred[best]) if best is not None else 0.0,
        float(cand.lexical[best]) if best is not None else 0.0,
        float(fused.lexical_norm[pos].max()) if len(pos) else 0.0,
        float(top3.mean()), score - best_fused, float(len(pos)), float(matching), math.log1p(size),
        matching / max(size, 1), overlap, *stats.common, industry_match, region_match,
        float(ptype == "university"), float(ptype == "institute"), float(ptype == "team"),
        float(ptype == "enterprise"), float(bool(country) and country not in DOMESTIC), *hist, *evidence,
    ]


def _ranks(scores: NDArray) -> NDArray[np.int64]:
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[np.argsort(-np.asarray(scores), kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def _evidence(engine, facts: CorpusFacts, stats: _QueryStats, cand: Candidates, fused: Fused, best: int | None
               ) -> list[float]:
    """The seven evidence features of the best capability (candidate position `best`)."""
    if best is None:
        return [0.0] * len(EVIDENCE_FEATURES)
    ev = stats.evidence
    row = int(fused.rows[best])
    terms = ev.terms
    hits = [(i, t) for i, t in enumerate(engine.capability_tokens(row)) if t in terms]  # the query's terms only
    positions: dict[str, list[int]] = {}
    for i, t in hits:
        positions.setdefault(t, []).append(i)
    adjacent = {(a, b) for (i, a), (j, b) in zip(hits, hits[1:]) if j == i + 1}
    phrases = len(adjacent.intersection(ev.bigrams)) / len(ev.bigrams) if ev.bigrams else 0.0
    total = sum(stats.idf.values())
    title = facts.title_terms(row)
    title_share = sum(w for t, w in stats.idf.items() if t in title) / total if total > 0 else 0.0
    return [1.0 / ev.dense_rank[best], 1.0 / ev.lexical_rank[best], ev.dense_top - float(cand.dense[best]),
            float(cand.lexical[best]) / ev.lexical_scale if ev.lexical_scale > 0 else 0.0,
            title_share, phrases, _window_share(stats.idf, total, positions)]


def _window_share(idf: Mapping[str, float], total: float, positions: Mapping[str, list[int]]) -> float:
    """The largest idf-weighted share of the query's terms that occur within WINDOW consecutive tokens."""
    if total <= 0:
        return 0.0
    events = sorted((p, t) for t in idf if t in positions for p in positions[t])
    if not events:
        return 0.0
    if events[-1][0] - events[0][0] < WINDOW:  # all in one window: the whole text's share
        return sum(idf[t] for t in idf if t in positions) / total
    count: dict[str, int] = {}
    best = covered = 0.0
    left = 0
    for p, t in events:
        n = count.get(t, 0)
        if n == 0:
            covered += idf[t]
        count[t] = n + 1
        while events[left][0] <= p - WINDOW:
            lt = events[left][1]
            count[lt] -= 1
            if count[lt] == 0:
                covered -= idf[lt]
            left += 1
        if covered > best:
            best = covered
    return best / total


_NO_HISTORY = History()


def _term_overlap(qtok: Sequence[str], dtok: Sequence[str], idf: Mapping[str, float]) -> float:
    total = sum(idf.values())
    if total <= 0:
        return 0.0
    have = set(dtok)
    return float(sum(w for t, w in idf.items() if t in have) / total)


def _same_place(a: str, b: str) -> bool:
    """Same district, or the same city when both name one (e.g. '齐齐哈尔市建华区' and '建华区')."""
    a, b = (a or "").strip(), (b or "").strip()
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    city_a, city_b = a.split("市")[0], b.split("市")[0]
    return "市" in a and "市" in b and city_a == city_b
