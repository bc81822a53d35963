"""The matching engine: demands to partners and capabilities, and texts or partners to demands.

    engine = MatchEngine(open_encoder()).fit(capabilities, demands, partners)
    engine.match_partners(demand_or_text, k=10)      -> list[PartnerMatch]
    engine.match_capabilities(demand_or_text, k=10)  -> list[CapabilityHit]
    engine.match_report(demand_or_text, k=10)        -> PartnerReport (matches, best fit, suitable?)
    engine.search_demands(text, k=10)                -> list[DemandHit]
    engine.demands_for_partner(partner_id, k=10)     -> list[DemandHit]

Every result carries its fit (`calibration`): the probability that staff would judge the pair
relevant, computed with the demand as the query and the capability as the document whichever
way the pair is reached, over all of a partner's capabilities, so no filter, page, k or
direction changes it. Demand-to-partner and text-to-demand lists are ordered by the fused
score (what ranks best there, see `evaluate`); partner-to-demand lists by the fit.

Records can be added, replaced and removed one at a time (`upsert_*`, `remove_*`); nothing
needs a rebuild. `save`/`load` persist everything derived; the records stay the source.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matcher.errors import MatcherError, NotFoundError
from matcher.fsutil import replace_dir
from matcher.records import (
    Capability,
    Demand,
    Partner,
    partners_from_capabilities,
    read_records,
    write_records,
)
from matcher.retrieval.calibration import FitCalibrator, default_calibrator, features_of
from matcher.retrieval.collection import Candidates, Collection, PairScores, interned, view_of_projections
from matcher.retrieval.encoders import encode_both_sides, sides_share_vectors, uncached
from matcher.retrieval.index import IndexParams
from matcher.retrieval.rank import (
    AggregationParams,
    Fused,
    FusionParams,
    aggregate,
    fuse,
    merge_terms,
    top_k,
)
from matcher.retrieval.reasons import demand_reason, partner_reason
from matcher.retrieval.results import CapabilityHit, DemandHit, PartnerMatch, PartnerReport, ScoreParts
from matcher.retrieval.text import Tokenizer, guess_language, shared_terms, showable_terms
from matcher.retrieval.vocabulary import TermVocabulary

Query = Demand | str
# A learned re-ranker (see `matcher.learning`): given the engine, the query, its candidates and the
# default partner order (numbers, scores), returns the new order and the scores to report.
Reranker = Callable[["MatchEngine", Query, list[str], Candidates, Fused, NDArray[np.int64], NDArray[np.float32]],
                    tuple[NDArray[np.int64], NDArray[np.float32]]]
DEMANDS_PER_CALL = 256  # demands a batch run hands to one engine call (their queries encode together)
SURFACE_CACHE_SIZE = 128  # query texts whose stem -> word maps are kept
WHOLE_CACHE_SIZE = 4096  # texts whose whole words (reasons) are kept: shown capabilities recur
VIEW_ROWS = 4096  # capability rows per slice when their demand-side views are computed
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Filters:
    """Restrict results. Empty sets mean no restriction.

    For partners and capabilities: industries (any of a capability's tags), regions and
    partner_types (of the partner), languages (of the capability). For demands: industries,
    regions, languages of the demand; include_confidential=False hides confidential ones."""

    industries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    partner_types: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    exclude_ids: frozenset[str] = frozenset()
    include_confidential: bool = True

    @property
    def empty(self) -> bool:
        return (
            not (self.industries or self.regions or self.partner_types or self.languages or self.exclude_ids)
            and self.include_confidential
        )


@dataclass
class EngineParams:
    fusion: FusionParams = field(default_factory=FusionParams)
    aggregation: AggregationParams = field(default_factory=AggregationParams)
    index: IndexParams = field(default_factory=IndexParams)
    evidence: int = 3  # capabilities shown as reasons per partner
    center_languages: bool = True  # remove the same-language bias of dense scores (see collection)


class MatchEngine:
    def __init__(
        self,
        encoder,
        params: EngineParams | None = None,
        tokenizer: Callable[[str], list[str]] | None = None,
        calibrator: FitCalibrator | None = None,
    ):
        self.encoder = encoder
        self.params = params or EngineParams()
        self.calibrator = calibrator or default_calibrator()
        self._demand_queries: dict[str, tuple[str, NDArray[np.float32]]] = {}  # id -> (text, query vector)
        self._demand_rows: dict[str, tuple[str, sp.csr_matrix]] = {}  # id -> (text, BM25 query row)
        self._demand_rows_version: tuple | None = None
        self.tokenizer = tokenizer or Tokenizer()
        self._surface_tokenizer = Tokenizer(stem=False)
        self._surface_cache: dict[str, dict[str, str]] = {}  # query text -> surface map (read-only)
        self._whole_cache: dict[str, frozenset[str]] = {}  # text -> its whole words (reasons)
        self._vocab: TermVocabulary | None = None  # what reasons may show; rebuilt as the corpus grows
        self._vocab_size = 0
        self._row_by_text: tuple[tuple, dict[str, int]] = ((), {})  # capability text -> live row
        self.capabilities: dict[str, Capability] = {}
        self.demands: dict[str, Demand] = {}
        self.partners: dict[str, Partner] = {}
        self._caps = Collection(encoder.dim, self.params.index, self.params.center_languages)
        self._dems = Collection(encoder.dim, self.params.index, self.params.center_languages)
        self._partner_ids: list[str] = []
        self._partner_num: dict[str, int] = {}
        self._partner_of_row = np.zeros(0, dtype=np.int64)
        self.reranker: Reranker | None = None  # None: the default (fused, aggregated) order

    # -- loading and editing ---------------------------------------------------------------
    def fit(
        self,
        capabilities: Sequence[Capability],
        demands: Sequence[Demand] = (),
        partners: Sequence[Partner] = (),
        progress: Progress | None = None,
    ) -> MatchEngine:
        """Index everything (encodes what the embedding cache does not already hold).

        Both sides are encoded before either is indexed: the memory the encoder's activations
        held is free again (and reused) when the token lists and postings grow, instead of
        coming on top of them when the demands were encoded after the capabilities' index
        (docs/performance.md, session 13). Duplicates are refused before anything is encoded."""
        _no_duplicates(capabilities, "capability")
        _no_duplicates(demands, "demand")
        cap_vectors = self._document_vectors([c.full_text for c in capabilities], progress)
        dem_vectors = self._document_vectors([d.full_text for d in demands], progress)
        self.upsert_partners(partners)
        self.upsert_capabilities(capabilities, vectors=cap_vectors)
        self.upsert_demands(demands, vectors=dem_vectors)
        return self

    def _document_vectors(self, texts: list[str], progress: Progress | None) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return self.encoder.encode_documents(texts, progress) if progress else self.encoder.encode_documents(texts)

    def upsert_partners(self, partners: Iterable[Partner]) -> None:
        for p in partners:
            self.partners[p.id] = p
            self._partner_number(p.id)

    def upsert_capabilities(
        self,
        capabilities: Sequence[Capability],
        progress: Progress | None = None,
        *,
        vectors: NDArray[np.float32] | None = None,
    ) -> None:
        """Add or replace capabilities; `vectors`, when given, are their documents' embeddings."""
        if not capabilities:
            return
        _no_duplicates(capabilities, "capability")
        for p in partners_from_capabilities(list(capabilities)):
            self.partners.setdefault(p.id, p)
        texts = [c.full_text for c in capabilities]
        if vectors is None:
            vectors = self._document_vectors(texts, progress)
        self._caps.add(
            [c.id for c in capabilities], self.tokenizer_batch(texts), vectors, _languages(capabilities, texts)
        )
        nums = np.array([self._partner_number(c.partner_id) for c in capabilities], dtype=np.int64)
        grown = np.zeros(len(self._caps.ids), dtype=np.int64)
        grown[: len(self._partner_of_row)] = self._partner_of_row
        grown[len(grown) - len(nums) :] = nums
        self._partner_of_row = grown
        self.capabilities.update({c.id: c for c in capabilities})

    def upsert_demands(
        self,
        demands: Sequence[Demand],
        progress: Progress | None = None,
        *,
        vectors: NDArray[np.float32] | None = None,
    ) -> None:
        """Add or replace demands; `vectors`, when given, are their documents' embeddings."""
        if not demands:
            return
        _no_duplicates(demands, "demand")
        texts = [d.full_text for d in demands]
        if vectors is None:
            vectors = self._document_vectors(texts, progress)
        self._dems.add([d.id for d in demands], self.tokenizer_batch(texts), vectors, _languages(demands, texts))
        self.demands.update({d.id: d for d in demands})

    def remove_capabilities(self, ids: Sequence[str]) -> None:
        self._caps.remove(list(ids))
        for i in ids:
            del self.capabilities[i]

    def remove_demands(self, ids: Sequence[str]) -> None:
        self._dems.remove(list(ids))
        for i in ids:
            del self.demands[i]
            self._demand_queries.pop(i, None)
            self._demand_rows.pop(i, None)

    def remove_partner(self, partner_id: str) -> None:
        """Removes the partner and all its capabilities."""
        self.remove_capabilities([c.id for c in self.capabilities.values() if c.partner_id == partner_id])
        self.partners.pop(partner_id, None)

    def tokenizer_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's tokens, every word one shared string object. Interned text by text: the
        tokeniser makes a new string for every occurrence, and 42k sbir-firms abstracts held
        that way until the collection interned them raised a start-up's peak by about 300 MB."""
        return [interned(self.tokenizer(t)) for t in texts]

    # -- demand (or text) to partners and capabilities -------------------------------------
    def match_partners(self, query: Query, *, k: int = 10, filters: Filters | None = None) -> list[PartnerMatch]:
        """Ranked partners with their fit, best capabilities, shared terms and score parts."""
        return self.match_report(query, k=k, filters=filters).matches

    def match_report(self, query: Query, *, k: int = 10, filters: Filters | None = None) -> PartnerReport:
        """`match_partners` plus whether any partner the filters allow reaches "possible".

        Exactly k partners (or all the filters allow, when fewer): those with a candidate
        capability in fused order, then the rest by fit."""
        _check_k(k)
        if isinstance(query, Demand):
            (qvec,), (qtok,) = self._encode_queries([query])
            passages = None
            qmat = self._query_matrix(query, qtok)
        else:
            qvec, passage, qtok = self._encode_typed(str(query))
            passages = passage[None, :]
            qmat = self._caps.bm25.query_matrix([qtok])
        cand, fused = self._fused_capabilities(qvec, qtok, filters, qmat)
        partners, scores = aggregate(fused, self._partner_of_row, self.params.aggregation)
        default_scores = {int(p): float(sc) for p, sc in zip(partners, scores)}
        if self.reranker is not None:  # a learned model re-orders; "partner" keeps the default score
            partners, scores = self.reranker(self, query, qtok, cand, fused, partners, scores)
        ranked = [int(p) for p in partners]
        if len(ranked) < k:
            seen = set(ranked)
            ranked += [p for p in self._allowed_partners(filters) if p not in seen]
        side = self._demand_side([query], qvec[None, :], passages)
        fits, feats, rows, bounds = self._partner_fits(qvec[None, :], qmat, ranked, side)
        fit_of = {p: float(fits[0, j]) for j, p in enumerate(ranked)}
        n_scored = len(partners)
        head = ranked[:n_scored]
        tail = sorted(ranked[n_scored:], key=lambda p: (-fit_of[p], self._partner_ids[p]))
        order = (head + tail)[:k]
        score_of = {int(p): float(sc) for p, sc in zip(partners, scores)}
        surface = self._surface_map(query, qtok)
        weights = self._term_weights(qtok, self._caps)  # once per query, not once per evidence
        qset = self._reason_terms(qtok, self._caps, weights)
        allowed = self._capability_mask(filters)
        at_candidate = {int(r): i for i, r in enumerate(fused.rows)}
        position = {p: j for j, p in enumerate(ranked)}
        out = []
        for rank, pnum in enumerate(order, start=1):
            pcols = np.arange(bounds[position[pnum]], bounds[position[pnum] + 1])
            pcols = [c for c in pcols if allowed is None or allowed[rows[c]]] or list(pcols)
            cap_fit = self.calibrator.capability_fit(feats[0, pcols])
            best = np.argsort(-cap_fit, kind="stable")[: self.params.evidence]
            hits = tuple(
                self._evidence_hit(int(rows[pcols[i]]), feats[0, pcols[i]], float(cap_fit[i]), cand, fused,
                                   at_candidate.get(int(rows[pcols[i]])), qset, surface, weights)
                for i in best
            )
            pid = self._partner_ids[pnum]
            fit = fit_of[pnum]
            score = score_of.get(pnum, 0.0)
            label = self.calibrator.label(fit)
            terms = merge_terms([h.shared_terms for h in hits])
            out.append(
                PartnerMatch(
                    partner_id=pid,
                    partner_name=self.partners[pid].name if pid in self.partners else pid,
                    score=score,
                    rank=rank,
                    evidence=hits,
                    shared_terms=terms,
                    components={
                        "partner": default_scores.get(pnum, 0.0),
                        "fit": fit,
                        "best_capability": hits[0].score,
                        "support": default_scores[pnum] - hits[0].score if pnum in default_scores else 0.0,
                        "dense": hits[0].parts.dense,
                        "lexical": hits[0].parts.lexical,
                        "lexical_weight": hits[0].parts.lexical_weight,
                        **({"learned": score} if self.reranker is not None else {}),
                    },
                    fit=fit,
                    label=label,
                    reason=partner_reason(label, hits[0].title, terms),
                )
            )
        best_fit = max(fit_of.values(), default=0.0)
        return PartnerReport(out, best_fit, best_fit >= self.calibrator.thresholds_.possible)

    def match_capabilities(self, query: Query, *, k: int = 10, filters: Filters | None = None) -> list[CapabilityHit]:
        _check_k(k)
        (qvec,), (qtok,) = self._encode_queries([query])
        cand, fused = self._fused_capabilities(qvec, qtok, filters)
        surface, weights = self._surface_map(query, qtok), self._term_weights(qtok, self._caps)
        qset = self._reason_terms(qtok, self._caps, weights)
        top = top_k(fused.score, k)
        ps = self._caps.pair_scores(qvec[None, :], self._caps.bm25.query_matrix([qtok]), fused.rows[top])
        ps = self._with_demand_view(ps, self._demand_side([query], qvec[None, :]), rows=fused.rows[top])
        fits = self.calibrator.capability_fit(features_of(ps))[0] if len(top) else []
        return [self._capability_hit(cand, fused, int(i), qset, surface, weights, float(f)) for i, f in zip(top, fits)]

    def rank_partners_batch(
        self, queries: Sequence[Query], *, k: int = 10, filters: Filters | None = None, progress: Progress | None = None
    ) -> list[list[tuple[str, float]]]:
        """Scores only, no reasons: for evaluation and batch runs. One list per query."""
        _check_k(k)
        out: list[list[tuple[str, float]]] = []
        for fused in self.fused_batch(queries, filters=filters, progress=progress):
            partners, scores = aggregate(fused, self._partner_of_row, self.params.aggregation)
            out.append([(self._partner_ids[int(p)], float(s)) for p, s in zip(partners[:k], scores[:k])])
        return out

    def rank_capabilities_batch(
        self, queries: Sequence[Query], *, k: int = 10, filters: Filters | None = None, progress: Progress | None = None
    ) -> list[list[tuple[str, float]]]:
        _check_k(k)
        out = []
        for fused in self.fused_batch(queries, filters=filters, progress=progress):
            out.append([(self._caps.ids[int(fused.rows[i])], float(fused.score[i])) for i in top_k(fused.score, k)])
        return out

    def ranked_targets_batch(
        self,
        queries: Sequence[Query],
        *,
        k: int = 10,
        level: str = "partner",
        filters: Filters | None = None,
        progress: Progress | None = None,
    ) -> list[list[tuple[str, float, float]]]:
        """(target_id, score, fit) for many queries, no reasons: exactly k targets each (all the
        filters allow when fewer), those among the candidates by fused score, then the rest by
        fit. Partners' fits are over all their capabilities, as everywhere."""
        _check_k(k)
        if level not in ("partner", "capability"):
            raise MatcherError(f"level must be 'partner' or 'capability', got {level!r}")
        qvecs, qtoks = self._encode_queries(queries, progress)
        allowed = self._capability_mask(filters)
        allowed_partners = self._allowed_partners(filters) if level == "partner" else []
        allowed_rows = np.flatnonzero(self._caps.alive & (allowed if allowed is not None else True))
        out: list[list[tuple[str, float, float]]] = []
        for start in range(0, len(qtoks), 256):
            block_v, block_t = qvecs[start : start + 256], qtoks[start : start + 256]
            sides = self._demand_side(queries[start : start + 256], block_v)
            cands = self._caps.candidates(block_v, block_t, depth=self.params.fusion.depth, allowed=allowed)
            for i, (qv, qt, cand) in enumerate(zip(block_v, block_t, cands)):
                side = sides.take(i) if sides is not None else None
                fused = fuse(cand, self.params.fusion)
                qmat = self._caps.bm25.query_matrix([qt])
                if level == "partner":
                    partners, scores = aggregate(fused, self._partner_of_row, self.params.aggregation)
                    ranked = [int(p) for p in partners]
                    head = ranked[:k]
                    tail: list[int] = []
                    if len(head) < k:
                        seen = set(ranked)
                        tail = [p for p in allowed_partners if p not in seen]
                    fits, *_ = self._partner_fits(qv[None, :], qmat, head + tail, side)
                    fit_of = dict(zip(head + tail, fits[0]))
                    tail = sorted(tail, key=lambda p: (-fit_of[p], self._partner_ids[p]))[: k - len(head)]
                    score_of = dict(zip(head, scores[: len(head)]))
                    out.append([(self._partner_ids[p], float(score_of.get(p, 0.0)), float(fit_of[p]))
                                for p in head + tail])
                else:
                    top = top_k(fused.score, k)
                    rows = [int(fused.rows[i]) for i in top]
                    score_of = {int(fused.rows[i]): float(fused.score[i]) for i in top}
                    if len(rows) < k:
                        seen = set(int(r) for r in fused.rows)
                        rows += [int(r) for r in allowed_rows if int(r) not in seen]
                    ps = self._with_demand_view(self._caps.pair_scores(qv[None, :], qmat, np.array(rows)), side,
                                                rows=np.array(rows))
                    fit = self.calibrator.capability_fit(features_of(ps))[0]
                    head = [(r, f) for r, f in zip(rows, fit) if r in score_of]
                    rest = sorted(((r, f) for r, f in zip(rows, fit) if r not in score_of),
                                  key=lambda x: (-x[1], self._caps.ids[x[0]]))[: k - len(head)]
                    out.append([(self._caps.ids[r], score_of.get(r, 0.0), float(f)) for r, f in head + rest])
        return out

    def match_partners_batch(self, demands: Sequence[Demand], *, k: int = 10) -> dict[str, list[PartnerMatch]]:
        """Full matches with reasons for many demands (encodes their queries in one batch)."""
        _check_k(k)
        self._encode_queries(demands)  # warms the embedding cache in batches
        return {d.id: self.match_partners(d, k=k) for d in demands}

    def encode_demand_queries(self, demands: Sequence[Query], progress: Progress | None = None) -> None:
        """Encode every demand's query now, in one call, before ranking them in parts.

        A model in bfloat16 gives a text's vector slightly different last bits in other batch
        company; encoded once, together, each demand's vector is the same whichever later call
        asks for it (the embedding cache keeps it), on one machine and on Ray alike."""
        if len(demands):
            self._encode_queries(demands, progress)

    def candidates_batch(self, queries: Sequence[Query], progress: Progress | None = None) -> list[Candidates]:
        """Raw candidates (both scores) for many queries; `evaluate` fuses them many ways."""
        qvecs, qtoks = self._encode_queries(queries, progress)
        out: list[Candidates] = []
        for start in range(0, len(qtoks), 256):
            out.extend(
                self._caps.candidates(
                    qvecs[start : start + 256], qtoks[start : start + 256], depth=self.params.fusion.depth
                )
            )
        return out

    def fused_batch(
        self, queries: Sequence[Query], *, filters: Filters | None = None, progress: Progress | None = None
    ) -> list[Fused]:
        qvecs, qtoks = self._encode_queries(queries, progress)
        allowed = self._capability_mask(filters)
        out: list[Fused] = []
        for start in range(0, len(qtoks), 256):
            cands = self._caps.candidates(
                qvecs[start : start + 256], qtoks[start : start + 256], depth=self.params.fusion.depth, allowed=allowed
            )
            out.extend(fuse(c, self.params.fusion) for c in cands)
        return out

    def query_candidates(self, queries: Sequence[Query]) -> tuple[list[Candidates], list[list[str]]]:
        """Raw candidates and query tokens for many queries (what a learned ranker's features need)."""
        qvecs, qtoks = self._encode_queries(queries)
        out: list[Candidates] = []
        for start in range(0, len(qtoks), 256):
            out.extend(
                self._caps.candidates(
                    qvecs[start : start + 256], qtoks[start : start + 256], depth=self.params.fusion.depth
                )
            )
        return out, qtoks

    def capability_tokens(self, row: int) -> list[str]:
        return self._caps.tokens[row]

    def capability_term_idf(self, qtok: Sequence[str]) -> dict[str, float]:
        """idf of each query term the capability collection knows."""
        return self._term_weights(qtok, self._caps)

    def partner_number(self, partner_id: str) -> int | None:
        return self._partner_num.get(partner_id)

    def partner_of_capability_rows(self) -> NDArray[np.int64]:
        return self._partner_of_row

    def partner_id_of_number(self, num: int) -> str:
        return self._partner_ids[num]

    def capability_id_of_row(self, row: int) -> str:
        return self._caps.ids[row]

    # -- text or partner to demands --------------------------------------------------------
    def search_demands(self, query: str, *, k: int = 10, filters: Filters | None = None) -> list[DemandHit]:
        """Demands relevant to a free text (e.g. what an institute can do), in fused order, each
        with its fit (the text scored as one more capability, the demand as the query)."""
        _check_k(k)
        if not str(query).strip():
            raise MatcherError("empty query text")
        text = str(query)
        # Fused order (the text as a query over the demands): ordering these hits by the fit was
        # measured worse (one typed line, demo corpus: nDCG@10 0.628 against 0.652; see
        # docs/fit.md, "Typed-text search"). Each hit shows its fit.
        tvec, tpassage, ttok = self._encode_typed(text)
        (cand,) = self._dems.candidates(tvec[None, :], [ttok], depth=self.params.fusion.depth,
                                        allowed=self._demand_mask(filters))
        fused = fuse(cand, self.params.fusion)
        dids = [self._dems.ids[int(fused.rows[i])] for i in top_k(fused.score, k)]
        qvecs, qmat = self._demand_query_block(dids)
        tokens = self.tokenizer(text)
        same = self._capability_row_with_text(text)
        side = self._demand_side([self.demands[d] for d in dids])
        if same is not None:  # a capability's own text, pasted: that capability's fits exactly
            ps = self._caps.pair_scores(qvecs, qmat, np.array([same], dtype=np.int64))
            ps = self._with_demand_view(ps, side, rows=np.array([same], dtype=np.int64))
        else:
            ps = self._caps.external_pair_scores(qvecs, qmat, tpassage, tokens, guess_language(text))
            ps = self._with_demand_view(ps, side, vectors=tpassage[None, :])
        fits = self.calibrator.capability_fit(features_of(ps))[:, 0] if len(dids) else np.zeros(0)
        surface = self._surface_map(text, tokens)
        weights = self._term_weights(tokens, self._dems)
        qset = self._reason_terms(tokens, self._dems, weights)
        out = []
        for rank, i in enumerate(range(len(dids)), start=1):
            did = dids[i]
            terms = self._display_terms(qset, self._dems.tokens[self._dems.row_of[did]], surface, self._dems, weights,
                                        self.demands[did].full_text)
            out.append(self._demand_hit(did, rank, float(fits[i]), _pair_parts(ps, i, 0), terms, ""))
        return out

    def demands_for_partner(self, partner_id: str, *, k: int = 10, filters: Filters | None = None) -> list[DemandHit]:
        """Demands relevant to a partner, best fit first.

        A partner's profile is its capabilities, not their average: each demand is judged
        against every capability, and the partner's fit takes the best one plus support (so a
        partner with unrelated lines finds demands for each of them)."""
        _check_k(k)
        pnum = self._partner_num.get(partner_id)
        rows = self._partner_rows().get(pnum, np.zeros(0, np.int64)) if pnum is not None else np.zeros(0, np.int64)
        if not len(rows):
            raise NotFoundError(f"partner '{partner_id}' has no capabilities")
        dids = self._allowed_demands(filters)
        qvecs, qmat = self._demand_query_block(dids)
        side = self._demand_side([self.demands[d] for d in dids])
        fits, feats, rows, _ = self._partner_fits(qvecs, qmat, [pnum], side)
        fits = fits[:, 0]
        cap_logit = self.calibrator.capability_logit(feats) if len(dids) else np.zeros((0, len(rows)))
        ps = self._caps.pair_scores(qvecs, qmat, rows)
        out = []
        for rank, i in enumerate(_best_first(fits, dids, k), start=1):
            did = dids[i]
            c = int(np.argmax(cap_logit[i]))
            row = int(rows[c])
            drow = self._dems.row_of[did]
            dtok = self._dems.tokens[drow]
            surface = self._surface_map(self.capabilities[self._caps.ids[row]].full_text)
            weights = self._term_weights(self._caps.tokens[row], self._dems)
            terms = self._display_terms(self._caps.tokens[row], dtok, surface, self._dems, weights,
                                        self.demands[did].full_text)
            out.append(self._demand_hit(did, rank, float(fits[i]), _pair_parts(ps, i, c), terms, self._caps.ids[row]))
        return out

    def _capability_row_with_text(self, text: str) -> int | None:
        """The live row of a stored capability whose text is exactly `text`, if any."""
        version = (len(self._caps.row_of), self._caps.bm25.n_docs_)
        if self._row_by_text[0] != version:  # rebuilt after any upsert or removal
            rows = {self.capabilities[cid].full_text: int(row) for cid, row in self._caps.row_of.items()}
            self._row_by_text = (version, rows)
        return self._row_by_text[1].get(text)

    def _demand_hit(self, did: str, rank: int, fit: float, parts: ScoreParts, terms, capability_id: str) -> DemandHit:
        label = self.calibrator.label(fit)
        cap_title = self.capabilities[capability_id].title if capability_id else ""
        return DemandHit(did, self.demands[did].title, fit, rank, parts, terms, fit, label, capability_id,
                         demand_reason(label, cap_title, terms))

    def _allowed_demands(self, filters: Filters | None) -> list[str]:
        mask = self._demand_mask(filters)
        return [did for did, row in self._dems.row_of.items() if mask is None or mask[row]]

    # -- internals -------------------------------------------------------------------------
    def _encode_queries(self, queries: Sequence[Query], progress: Progress | None = None):
        texts = [q.full_text if isinstance(q, Demand) else str(q) for q in queries]
        if not all(t.strip() for t in texts):
            raise MatcherError("empty query text")
        typed = [i for i, q in enumerate(queries) if not isinstance(q, Demand)]
        if not typed:
            vecs = self.encoder.encode_queries(texts, progress) if progress else self.encoder.encode_queries(texts)
        else:  # typed texts bypass the embedding cache (`encoders.uncached`)
            vecs = np.zeros((len(texts), self.encoder.dim), np.float32)
            vecs[typed] = uncached(self.encoder).encode_queries([texts[i] for i in typed])
            typed_set = set(typed)
            stored = [i for i in range(len(texts)) if i not in typed_set]
            if stored:
                vecs[stored] = self.encoder.encode_queries([texts[i] for i in stored])
            if progress:
                progress(len(texts))
        return np.asarray(vecs, dtype=np.float32), [self._query_tokens(q, t) for q, t in zip(queries, texts)]

    def _encode_typed(self, text: str) -> tuple[NDArray[np.float32], NDArray[np.float32], list[str]]:
        """A typed text's query vector, its passage vector (the text as one more demand or
        capability, for the fit's other side) and its tokens; both vectors from one encoder
        call (`encoders.encode_both_sides`)."""
        if not text.strip():
            raise MatcherError("empty query text")
        queries, passages = encode_both_sides(self.encoder, [text])
        return (np.asarray(queries[0], dtype=np.float32), np.asarray(passages[0], dtype=np.float32),
                self._query_tokens(text, text))

    def _typed_passages(self, texts: Sequence[str], query_vectors=None) -> NDArray[np.float32]:
        """Passage vectors of typed texts: their query vectors when the model has one vector per
        text (`encoders.sides_share_vectors`), else encoded, without the embedding cache."""
        if query_vectors is not None and sides_share_vectors(self.encoder):
            return np.asarray(query_vectors, dtype=np.float32)
        return np.asarray(uncached(self.encoder).encode_documents(list(texts)), dtype=np.float32)

    def _query_tokens(self, query: Query, text: str) -> list[str]:
        """A stored, unchanged demand reuses the tokens computed when it was indexed."""
        if isinstance(query, Demand):
            row = self._dems.row_of.get(query.id)
            stored = self.demands.get(query.id) if row is not None else None
            if stored is not None and stored.full_text == text:
                return self._dems.tokens[row]
        return self.tokenizer(text)

    def _fused_capabilities(self, qvec, qtok, filters: Filters | None, qmat=None) -> tuple[Candidates, Fused]:
        (cand,) = self._caps.candidates(
            qvec[None, :], [qtok], depth=self.params.fusion.depth, allowed=self._capability_mask(filters), qmat=qmat
        )
        return cand, fuse(cand, self.params.fusion)

    def _capability_hit(self, cand: Candidates, fused: Fused, i: int, qtok, surface, weights,
                        fit: float) -> CapabilityHit:
        """fit: the pair's fit from `pair_scores` (the reference every list's fit equals)."""
        row = int(fused.rows[i])
        cid = self._caps.ids[row]
        cap = self.capabilities[cid]
        terms = self._display_terms(qtok, self._caps.tokens[row], surface, self._caps, weights, cap.full_text)
        return CapabilityHit(cid, cap.partner_id, cap.title, float(fused.score[i]), _parts(cand, fused, i), terms,
                             fit, self.calibrator.label(fit))

    def _evidence_hit(self, row: int, feats, fit: float, cand: Candidates, fused: Fused, i: int | None, qtok,
                      surface, weights) -> CapabilityHit:
        """A partner's capability shown as a reason: score parts from the candidates when it is one
        of them, else from its pair scores (fused 0: it was not among the query's candidates).
        fit: the capability's fit from `feats`."""
        if i is not None:
            return self._capability_hit(cand, fused, i, qtok, surface, weights, fit)
        cid = self._caps.ids[row]
        cap = self.capabilities[cid]
        terms = self._display_terms(qtok, self._caps.tokens[row], surface, self._caps, weights, cap.full_text)
        parts = ScoreParts(dense=float(feats[0]), lexical=float(cand.lexical_scale * feats[2]), dense_norm=0.0,
                           lexical_norm=0.0, lexical_weight=0.0, fused=0.0)
        return CapabilityHit(cid, cap.partner_id, cap.title, 0.0, parts, terms, fit, self.calibrator.label(fit))

    # -- the fit ---------------------------------------------------------------------------
    def _partner_rows(self) -> dict[int, NDArray[np.int64]]:
        """Live capability rows of every partner number (rebuilt after any edit)."""
        return self._partner_layout().groups

    def _partner_layout(self) -> _PartnerLayout:
        cache = getattr(self, "_rows_cache", None)
        if cache is None or cache[0] is not self._partner_of_row or cache[1] != int(self._caps.alive.sum()):
            live = np.flatnonzero(self._caps.alive[: len(self._partner_of_row)])
            nums = self._partner_of_row[live]
            order = np.argsort(nums, kind="stable")
            live, nums = live[order], nums[order]
            starts = np.flatnonzero(np.r_[True, nums[1:] != nums[:-1]]) if len(nums) else np.zeros(0, np.int64)
            bounds = np.r_[starts, len(nums)]
            groups = {int(nums[a]): live[a:b] for a, b in zip(bounds[:-1], bounds[1:])}
            n_nums = max(len(self._partner_ids), int(nums.max()) + 1 if len(nums) else 0)
            first, count = np.zeros(n_nums, np.int64), np.zeros(n_nums, np.int64)
            first[nums[starts]], count[nums[starts]] = starts, np.diff(bounds)
            layout = _PartnerLayout(groups, live, first, count)
            cache = self._rows_cache = (self._partner_of_row, int(self._caps.alive.sum()), layout)
        return cache[2]

    def _allowed_partners(self, filters: Filters | None) -> list[int]:
        """Partner numbers with a live capability the filters allow."""
        groups = self._partner_rows()
        allowed = self._capability_mask(filters)
        return [p for p, rows in groups.items() if allowed is None or bool(allowed[rows].any())]

    def _partner_fits(self, qvecs, qmat, pnums: Sequence[int], side: _DemandSide | None):
        """Fits of queries (demands or texts) against partners, over all their live capabilities.
        side: the queries' `_demand_side`.

        Returns (fits (nq, len(pnums)), features (nq, n_rows, 4), rows (n_rows,), bounds) where
        rows bounds[j] to bounds[j + 1] are partner pnums[j]'s capabilities."""
        rows, bounds = self._partner_layout().rows_of(pnums)
        # both views' cosines in one pass over the rows (`products64`)
        dense, other = self._caps.products64(rows, [qvecs, side.vectors if side is not None else qvecs[:0]])
        ps = self._with_demand_view(self._caps.pair_scores(qvecs, qmat, rows, dense=dense), side, rows=rows,
                                    dense=other)
        feats = features_of(ps)
        return self.calibrator.partner_fits_spans(feats, bounds), feats, rows, bounds

    def pair_fit(self, demand_id: str, target_id: str) -> float:
        """The fit of a stored demand with a partner or a capability (by id), straight from the
        pair: the reference every list's fit must equal."""
        if demand_id not in self.demands:
            raise NotFoundError(f"unknown demand '{demand_id}'")
        q, qmat = self._demand_query_block([demand_id])
        side = self._demand_side([self.demands[demand_id]])
        if target_id in self._caps.row_of:
            row = np.array([self._caps.row_of[target_id]])
            ps = self._with_demand_view(self._caps.pair_scores(q, qmat, row), side, rows=row)
            return float(self.calibrator.capability_fit(features_of(ps))[0, 0])
        if target_id not in self._partner_num:
            raise NotFoundError(f"unknown partner or capability '{target_id}'")
        fits, *_ = self._partner_fits(q, qmat, [self._partner_num[target_id]], side)
        return float(fits[0, 0])

    def fits_against(
        self, queries: Sequence[Query], targets: Sequence[str], *, level: str = "partner"
    ) -> tuple[NDArray[np.float64], NDArray[np.float32], list[NDArray[np.intp]]]:
        """Fits of every query against every target (partner ids, or capability ids at level
        "capability"): what `evaluate` and `calibrate` need for whole judged sets.

        Returns (fits (nq, nt), features (nq, n_rows, 4), cols) with cols[j] the feature
        columns of target j (its capabilities)."""
        qvecs, qtoks = self._encode_queries(queries) if len(queries) else (np.zeros((0, self.encoder.dim)), [])
        qmat = self._caps.bm25.query_matrix(qtoks)
        if level == "partner":
            missing = [t for t in targets if t not in self._partner_num]
            if missing:
                raise NotFoundError(f"unknown partner(s): {', '.join(missing[:5])}")
            fits, feats, _, bounds = self._partner_fits(qvecs, qmat, [self._partner_num[t] for t in targets],
                                                        self._demand_side(queries, qvecs))
            return fits, feats, [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        rows = np.array([self._caps.row_of[t] for t in targets], dtype=np.int64)
        ps = self._with_demand_view(self._caps.pair_scores(qvecs, qmat, rows), self._demand_side(queries, qvecs),
                                    rows=rows)
        feats = features_of(ps)
        return self.calibrator.capability_fit(feats), feats, [np.array([j]) for j in range(len(rows))]

    def _demand_side(self, queries: Sequence[Query], query_vectors=None, passages=None) -> _DemandSide | None:
        """The demand side of the capability's view of pairs (see `calibration`): each query's
        passage vector, language and row in the demand collection (-1 for a typed text or a
        demand not indexed, which is encoded here). None when no demand is indexed.
        query_vectors: the queries' query vectors, when known (see `_typed_passages`); passages:
        their passage vectors, when known (`_encode_typed`; rows of stored demands are ignored)."""
        if not len(self._dems) or not len(queries):
            return None
        vecs = np.zeros((len(queries), self.encoder.dim), np.float32)
        langs, own = [], np.full(len(queries), -1, np.int64)
        todo = []
        for i, q in enumerate(queries):
            text = q.full_text if isinstance(q, Demand) else str(q)
            row = self._dems.row_of.get(q.id) if isinstance(q, Demand) else None
            if row is not None and self.demands[q.id].full_text == text:
                vecs[i], own[i] = self._dems.vectors[row], row
                langs.append(self._dems.langs[row])
            else:
                todo.append(i)
                langs.append((q.language if isinstance(q, Demand) else "") or guess_language(text))
        typed = [i for i in todo if not isinstance(queries[i], Demand)]
        if typed and passages is not None:
            vecs[typed] = np.asarray(passages, dtype=np.float32)[typed]
        elif typed:
            given = None if query_vectors is None else np.asarray(query_vectors)[typed]
            vecs[typed] = self._typed_passages([str(queries[i]) for i in typed], given)
        unstored = [i for i in todo if isinstance(queries[i], Demand)]
        if unstored:
            texts = [queries[i].full_text for i in unstored]
            vecs[unstored] = np.asarray(self.encoder.encode_documents(texts), dtype=np.float32)
        return _DemandSide(vecs, langs, own)

    def _with_demand_view(self, ps: PairScores, side: _DemandSide | None, *, rows=None, vectors=None,
                          dense=None) -> PairScores:
        """`ps` with the capability's view of each pair (rows: capability rows; vectors: an
        outside capability's passage vector instead of rows; dense: the demand side's passage
        vectors against the rows, float64, when the caller has them)."""
        if side is None:
            return ps
        spreads = means = None
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            means, spreads = (m[:, rows] for m in self._capability_views())
            if dense is None:
                (dense,) = self._caps.products64(rows, [side.vectors])
        view = self._dems.population_scores(side.vectors, side.languages, side.own_rows, vectors, spreads, means,
                                            dense)
        if view is None:
            return ps
        return dataclasses.replace(ps, other_dense=view[0], other_offset=view[1], other_scale=view[2])

    def _capability_views(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """`_dems.views_of` every capability row (means, spreads), kept until the demands or
        capabilities change: a (dim x dim) product per row and demand language, too much to
        redo for every query of a large corpus, and the same numbers for a pair whichever rows
        share the request. After demands are filed, edited or deleted, only their rows are
        projected on every capability (`Collection.changes_since`): at 42k capabilities the full
        pass took about a second per demand language, in every process after every demand write."""
        caps_key = (self._caps.version, len(self._caps.ids))
        cache: _CapabilityViews | None = getattr(self, "_views_cache", None)
        if cache is not None and cache.caps_key == caps_key and cache.dems_version != self._dems.version:
            changes = self._dems.changes_since(cache.dems_version)
            cache = cache.followed(changes, self._caps.vectors, self._dems) if changes is not None else None
        if cache is None or cache.caps_key != caps_key or cache.dems_version != self._dems.version:
            cache = _CapabilityViews.computed(self._caps.vectors, self._dems, caps_key)
        self._views_cache = cache
        return cache.means, cache.spreads

    def _query_matrix(self, demand: Demand, tokens: Sequence[str]) -> sp.csr_matrix:
        """A demand's BM25 query row: kept for a stored, unchanged demand (its 400 words looked
        up again were a twentieth of a stored demand's match)."""
        stored = self.demands.get(demand.id)
        if stored is not None and stored.full_text == demand.full_text:
            return self._demand_query_block([demand.id])[1]
        return self._caps.bm25.query_matrix([tokens])

    def _demand_query_block(self, demand_ids: Sequence[str]):
        """(query vectors (n, dim), BM25 query matrix over the capabilities) of stored demands:
        the demand side of every pair, whichever way it is searched."""
        texts = [self.demands[d].full_text for d in demand_ids]
        missing = [i for i, (d, t) in enumerate(zip(demand_ids, texts))
                   if d not in self._demand_queries or self._demand_queries[d][0] != t]
        if missing:
            vecs = np.asarray(self.encoder.encode_queries([texts[i] for i in missing]), dtype=np.float32)
            for i, v in zip(missing, vecs):
                self._demand_queries[demand_ids[i]] = (texts[i], v)
        qvecs = (np.stack([self._demand_queries[d][1] for d in demand_ids]) if demand_ids
                 else np.zeros((0, self.encoder.dim), np.float32))
        # A demand's BM25 query row depends on its text and the capabilities' idf: kept until either
        # changes, so searching demands does not re-read every demand's words on each request.
        bm = self._caps.bm25
        version = (id(bm), bm.n_docs_, len(bm.vocabulary_), bm.weights_.shape[0])
        if self._demand_rows_version != version:
            self._demand_rows.clear()
            self._demand_rows_version = version
        todo = [i for i, (d, t) in enumerate(zip(demand_ids, texts))
                if d not in self._demand_rows or self._demand_rows[d][0] != t]
        if todo:
            fresh = bm.query_matrix([self._query_tokens(self.demands[demand_ids[i]], texts[i]) for i in todo])
            for j, i in enumerate(todo):
                self._demand_rows[demand_ids[i]] = (texts[i], fresh[j])
        if not demand_ids:
            return qvecs, bm.query_matrix([])
        if len(demand_ids) == 1:
            return qvecs, self._demand_rows[demand_ids[0]][1]
        return qvecs, sp.vstack([self._demand_rows[d][1] for d in demand_ids], format="csr")

    def _term_weights(self, qtok, coll: Collection) -> dict[str, float]:
        """idf of each query term the collection knows: the order of the shown shared terms."""
        bm = coll.bm25
        idf = bm.idf()
        return {t: float(idf[j]) for t in set(qtok) if (j := bm.vocabulary_.get(t)) is not None}

    def _reason_terms(self, qtok, coll: Collection, weights: dict[str, float]) -> frozenset[str]:
        """The query's terms a reason could show against any document of `coll`, worked out once
        for a query shown with many documents and passed to `_display_terms` as its tokens."""
        return showable_terms(qtok, weights, _min_reason_idf(coll), self._vocabulary().shows)

    def _display_terms(
        self, qtok, dtok, surface: dict[str, str], coll: Collection, weights: dict[str, float] | None = None,
        doc_text: str | None = None,
    ) -> tuple[str, ...]:
        """qtok: the query's tokens, or its `_reason_terms` (with `weights` given);
        weights: `_term_weights(qtok, coll)` when the caller shows several hits for one query;
        doc_text: the document's text, so a term must be a whole word of one side (see
        `shared_terms`)."""
        if weights is None:
            weights = self._term_weights(qtok, coll)
        vocab = self._vocabulary()
        whole = getattr(surface, "whole", None)
        compounds: dict[str, float] = {}
        if whole is not None and doc_text is not None:
            doc_whole = self._whole_words(doc_text, dtok)
            # A dictionary term both texts contain whole ("低温防腐涂层") is shown before its pieces.
            for term in vocab.compounds(whole & doc_whole):
                compounds[term] = max((w for t, w in weights.items() if t in term and t != term), default=0.0)
            whole = _EitherSet(whole, doc_whole)
        min_idf = _min_reason_idf(coll)
        compounds = {t: w for t, w in compounds.items() if w >= min_idf}
        terms = shared_terms(qtok, dtok, weights, min_idf=min_idf, whole_words=whole, compounds=compounds,
                             show=vocab.shows)
        return tuple(surface.get(t, t) for t in terms)

    def prepare(self) -> None:
        """Build now what the first match would build: the reasons' dictionary, the term-major
        postings of both collections, the partners' rows and the capabilities' views of the
        demands. A service calls it while starting, before handing the heap's free pages back:
        built during the first requests instead, their temporaries stayed in the heap (10-20 MB
        at 42k capabilities, docs/performance.md) and the first request waited for them."""
        self.prepare_reasons()
        for coll in (self._caps, self._dems):
            if len(coll):
                coll.bm25.prepare()
        self._partner_rows()
        if len(self._dems) and len(self._caps):
            self._capability_views()

    def prepare_reasons(self) -> None:
        """Build the reasons' dictionary now rather than on the first match shown (a service
        calls it while starting: on a large Chinese corpus it takes a while)."""
        self._vocabulary()

    def _vocabulary(self) -> TermVocabulary:
        """The reasons' dictionary, built from the indexed capabilities and demands; rebuilt
        when the corpus has grown or shrunk by a twentieth since (not on every new record, so
        filing a demand stays cheap; the same corpus always gives the same dictionary)."""
        size = len(self.capabilities) + len(self.demands)
        if self._vocab is None or abs(size - self._vocab_size) > self._vocab_size / 20:
            # read once, text by text: a list of 47k texts held 60 MB more during the build
            texts = itertools.chain((c.full_text for c in self.capabilities.values()),
                                    (d.full_text for d in self.demands.values()))
            self._vocab = TermVocabulary.build(texts)
            self._vocab_size = size
            self._whole_cache.clear()
            self._surface_cache.clear()
        return self._vocab

    def _whole_words(self, text: str, tokens: Sequence[str] | None = None) -> frozenset[str]:
        """tokens: `self.tokenizer(text)` when already known (an indexed text's tokens)."""
        cached = self._whole_cache.get(text)
        if cached is None:
            if len(self._whole_cache) >= WHOLE_CACHE_SIZE:
                del self._whole_cache[next(iter(self._whole_cache))]  # the oldest
            tokens = self.tokenizer(text) if tokens is None else tokens
            cached = self._whole_cache[text] = self._vocabulary().whole_words_of_tokens(text, tokens)
        return cached

    def _surface_map(self, query, stems: list[str] | None = None) -> dict[str, str]:
        """Stem -> the word as the query wrote it, so reasons show words, not stems.

        stems: the query's tokens when already computed (saves tokenising it again)."""
        text = query.full_text if isinstance(query, Demand) else str(query)
        self._vocabulary()  # rebuilt first if due, so the map's whole words use the current one
        cached = self._surface_cache.get(text)
        if cached is not None:
            return cached
        stems = self.tokenizer(text) if stems is None else stems
        words = self._surface_tokenizer(text)
        surface = _Surface(zip(stems, words)) if len(stems) == len(words) else _Surface()
        surface.whole = self._whole_words(text, stems)
        if len(self._surface_cache) >= SURFACE_CACHE_SIZE:
            self._surface_cache.clear()
        self._surface_cache[text] = surface  # a demand matched again skips tokenising it twice
        return surface

    def _partner_number(self, pid: str) -> int:
        num = self._partner_num.get(pid)
        if num is None:
            num = self._partner_num[pid] = len(self._partner_ids)
            self._partner_ids.append(pid)
        return num

    def _capability_mask(self, filters: Filters | None) -> NDArray[np.bool_] | None:
        if filters is None or filters.empty:
            return None
        mask = np.zeros(len(self._caps.ids), dtype=bool)
        for cid, row in self._caps.row_of.items():
            cap = self.capabilities[cid]
            partner = self.partners.get(cap.partner_id)
            mask[row] = (
                (not filters.industries or bool(filters.industries.intersection(cap.industries)))
                and (not filters.regions or (partner is not None and partner.region in filters.regions))
                and (not filters.partner_types or (partner is not None and partner.type in filters.partner_types))
                and (not filters.languages or (cap.language or guess_language(cap.full_text)) in filters.languages)
                and cid not in filters.exclude_ids
                and cap.partner_id not in filters.exclude_ids
            )
        return mask

    def _demand_mask(self, filters: Filters | None) -> NDArray[np.bool_] | None:
        if filters is None or filters.empty:
            return None
        mask = np.zeros(len(self._dems.ids), dtype=bool)
        for did, row in self._dems.row_of.items():
            d = self.demands[did]
            mask[row] = (
                (not filters.industries or d.industry in filters.industries)
                and (not filters.regions or d.region in filters.regions)
                and (not filters.languages or (d.language or guess_language(d.full_text)) in filters.languages)
                and (filters.include_confidential or not d.confidential)
                and did not in filters.exclude_ids
            )
        return mask

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write everything into `folder`, replacing an older save atomically."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            self._caps.save(tmp / "capabilities")
            self._dems.save(tmp / "demands")
            for kind, records in (
                ("capabilities", self.capabilities),
                ("demands", self.demands),
                ("partners", self.partners),
            ):
                write_records(tmp / f"{kind}.jsonl", records.values())
            meta = {
                "encoder": self.encoder.name,
                "dim": self.encoder.dim,
                "fusion": asdict(self.params.fusion),
                "aggregation": asdict(self.params.aggregation),
                "evidence": self.params.evidence,
                "partner_ids": self._partner_ids,
                "partner_of_row": self._partner_of_row.tolist(),
            }
            (tmp / "engine.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            replace_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: str | Path, encoder) -> MatchEngine:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "engine.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise MatcherError(f"{folder} is not a saved techmatch index (no engine.json)") from exc
        if meta["encoder"] != encoder.name:
            raise MatcherError(
                f"{folder} was built with model '{meta['encoder']}', not '{encoder.name}'; "
                "rebuild it with `techmatch index`"
            )
        caps = Collection.load(folder / "capabilities")
        params = EngineParams(
            FusionParams(**meta["fusion"]),
            AggregationParams(**meta["aggregation"]),
            caps.index_params,
            meta["evidence"],
            caps.center_languages,
        )
        self = cls(encoder, params)
        self._caps = caps
        self._dems = Collection.load(folder / "demands")
        self._partner_ids = meta["partner_ids"]
        self._partner_num = {p: i for i, p in enumerate(self._partner_ids)}
        self._partner_of_row = np.asarray(meta["partner_of_row"], dtype=np.int64)
        self.capabilities = {c.id: c for c in read_records(folder / "capabilities.jsonl", "capabilities")}
        self.demands = {d.id: d for d in read_records(folder / "demands.jsonl", "demands")}
        self.partners = {p.id: p for p in read_records(folder / "partners.jsonl", "partners")}
        return self


@dataclass(frozen=True)
class _DemandSide:
    """Queries seen as demands: passage vectors (n, dim), languages, rows in the demand
    collection (-1: not indexed)."""

    vectors: NDArray[np.float32]
    languages: list[str]
    own_rows: NDArray[np.int64]

    def take(self, i: int) -> _DemandSide:
        return _DemandSide(self.vectors[i : i + 1], self.languages[i : i + 1], self.own_rows[i : i + 1])


@dataclass(frozen=True)
class _PartnerLayout:
    """Live capability rows by partner number: `groups` maps a number to its rows; `rows` holds
    them all, partner after partner, number p's from first[p] for count[p] rows."""

    groups: dict[int, NDArray[np.int64]]
    rows: NDArray[np.int64]
    first: NDArray[np.int64]
    count: NDArray[np.int64]

    def rows_of(self, pnums: Sequence[int]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(rows, bounds): the partners' rows one partner after another, partner j's from
        bounds[j] to bounds[j + 1]."""
        pnums = np.asarray(pnums, dtype=np.int64).reshape(-1)
        # a partner numbered after the layout was built (no capabilities yet) owns no rows
        known = np.flatnonzero(pnums < len(self.count))
        sizes, first = np.zeros(len(pnums), np.int64), np.zeros(len(pnums), np.int64)
        sizes[known], first[known] = self.count[pnums[known]], self.first[pnums[known]]
        bounds = np.zeros(len(pnums) + 1, np.int64)
        np.cumsum(sizes, out=bounds[1:])
        at = np.repeat(first - bounds[:-1], sizes) + np.arange(bounds[-1])
        return self.rows[at], bounds


@dataclass(frozen=True)
class _CapabilityViews:
    """The demand collection's projections of every capability row (`Collection.projections`:
    per demand language, counts, sums of squared and of plain cosines) and the views derived
    from them, as of demand collection version `dems_version` and capability key `caps_key`."""

    caps_key: tuple[int, int]
    dems_version: int
    names: list[str]
    counts: NDArray[np.float64]
    squares: NDArray[np.float64]
    sums: NDArray[np.float64]
    means: NDArray[np.float64]
    spreads: NDArray[np.float64]

    @classmethod
    def computed(cls, vectors: NDArray[np.float32], dems: Collection, caps_key) -> _CapabilityViews:
        # In slices of rows: at 42k capabilities the float64 temporaries of one pass over all
        # rows came to about 390 MB, and the service's peak memory with them.
        slices = [vectors[i : i + VIEW_ROWS] for i in range(0, len(vectors), VIEW_ROWS)] or [vectors]
        parts = [dems.projections(v) for v in slices]
        names, counts = parts[0][0], parts[0][1]
        squares = np.concatenate([p[2] for p in parts], axis=1)
        sums = np.concatenate([p[3] for p in parts], axis=1)
        return cls._of(caps_key, dems.version, names, counts, squares, sums)

    def followed(self, changes, vectors: NDArray[np.float32], dems: Collection) -> _CapabilityViews | None:
        """These views after `changes` (`Collection.changes_since`) to the demand collection, or
        None when they cannot be followed (the caller recomputes)."""
        if not changes:
            return dataclasses.replace(self, dems_version=dems.version)
        counts = dict(zip(self.names, self.counts))
        squares = {n: self.squares[i].copy() for i, n in enumerate(self.names)}
        sums = {n: self.sums[i].copy() for i, n in enumerate(self.names)}
        langs = [lang for lang, rows, _ in changes for _ in range(len(rows))]
        signs = np.concatenate([np.full(len(rows), float(sign)) for _, rows, sign in changes])
        changed = np.vstack([np.asarray(rows, np.float64) for _, rows, _ in changes])
        columns = {lang: np.array([j for j, lg in enumerate(langs) if lg == lang]) for lang in set(langs)}
        for lang, cols in columns.items():
            squares.setdefault(lang, np.zeros(len(vectors)))
            sums.setdefault(lang, np.zeros(len(vectors)))
            counts[lang] = counts.get(lang, 0.0) + float(signs[cols].sum())
        for i in range(0, len(vectors), VIEW_ROWS):  # every changed row against a slice at once
            cos = vectors[i : i + VIEW_ROWS].astype(np.float64) @ changed.T
            for lang, cols in columns.items():
                squares[lang][i : i + VIEW_ROWS] += cos[:, cols] ** 2 @ signs[cols]
                sums[lang][i : i + VIEW_ROWS] += cos[:, cols] @ signs[cols]
        names = sorted(n for n, c in counts.items() if c > 0)
        if {n: counts[n] for n in names} != dems.language_counts():  # a change the journal missed
            return None
        shape = (len(names), len(vectors))
        return self._of(self.caps_key, dems.version, names, np.array([counts[n] for n in names]),
                        np.array([squares[n] for n in names]).reshape(shape),
                        np.array([sums[n] for n in names]).reshape(shape))

    @classmethod
    def _of(cls, caps_key, dems_version, names, counts, squares, sums) -> _CapabilityViews:
        if len(names):
            means, spreads = view_of_projections(counts, squares, sums)
        else:  # no demand left: nothing uses the views
            means, spreads = np.zeros((1, squares.shape[1])), np.ones((1, squares.shape[1]))
        return cls(caps_key, dems_version, list(names), counts, squares, sums, means, spreads)


def _min_reason_idf(coll: Collection) -> float:
    """In a corpus of some size, a word in more than a tenth of the texts explains nothing."""
    return float(np.log1p(9.0)) if coll.bm25.n_docs_ >= 50 else 0.0


class _Surface(dict):
    """Stem -> surface word of one query, with the query's whole words (`whole`)."""

    whole: frozenset[str] | None = None


class _EitherSet:
    """Membership in either of two sets, without building their union of two texts' every
    word for each shown reason."""

    __slots__ = ("a", "b")

    def __init__(self, a: frozenset[str], b: frozenset[str]) -> None:
        self.a, self.b = a, b

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b


def _best_first(fits: NDArray[np.float64], ids: Sequence[str], k: int) -> list[int]:
    """Positions of the k best fits; ties by id so pages are stable."""
    return sorted(range(len(ids)), key=lambda i: (-float(fits[i]), ids[i]))[:k]


def _pair_parts(ps: PairScores, q: int, r: int) -> ScoreParts:
    """Score parts of one pair scored on its own (nothing to normalise against: the fit is the score)."""
    return ScoreParts(
        dense=float(ps.dense[q, r]),
        lexical=float(ps.lexical[q, r]),
        dense_norm=0.0,
        lexical_norm=float(min(1.0, ps.lexical[q, r] / ps.lexical_scale[q])),
        lexical_weight=0.0,
        fused=0.0,
        language_offset=float(ps.offset[q, r]),
        language_scale=float(ps.scale[q, r]),
    )


def _parts(cand: Candidates, fused: Fused, i: int) -> ScoreParts:
    return ScoreParts(
        dense=float(cand.dense[i]),
        lexical=float(cand.lexical[i]),
        dense_norm=float(fused.dense_norm[i]),
        lexical_norm=float(fused.lexical_norm[i]),
        lexical_weight=fused.lexical_weight,
        fused=float(fused.score[i]),
        language_offset=float(cand.offset[i]) if cand.offset is not None else 0.0,
        language_scale=float(cand.scale[i]) if cand.scale is not None else 1.0,
    )


def _languages(records, texts: Sequence[str]) -> list[str]:
    """Each record's language: as declared, else guessed from its script."""
    return [r.language or guess_language(t) for r, t in zip(records, texts)]


def _no_duplicates(records, kind: str) -> None:
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise MatcherError(f"duplicate {kind} id '{r.id}'")
        seen.add(r.id)


def _check_k(k: int) -> None:
    # a negative k would slice from the end and quietly return almost everything
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise MatcherError(f"k must be a whole number of at least 1, got {k!r}")
