"""The matching engine: demands to partners and capabilities, and texts or partners to demands.

    engine = MatchEngine(open_encoder()).fit(capabilities, demands, partners)
    engine.match_partners(demand_or_text, k=10)      -> list[PartnerMatch]
    engine.match_capabilities(demand_or_text, k=10)  -> list[CapabilityHit]
    engine.search_demands(text, k=10)                -> list[DemandHit]
    engine.demands_for_partner(partner_id, k=10)     -> list[DemandHit]

Records can be added, replaced and removed one at a time (`upsert_*`, `remove_*`); nothing
needs a rebuild. `save`/`load` persist everything derived; the records stay the source.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
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
from matcher.retrieval.collection import Candidates, Collection
from matcher.retrieval.index import IndexParams
from matcher.retrieval.rank import (
    AggregationParams,
    Fused,
    FusionParams,
    aggregate,
    fuse,
    merge_terms,
    top_k,
    top_rows_of_partner,
)
from matcher.retrieval.results import CapabilityHit, DemandHit, PartnerMatch, ScoreParts
from matcher.retrieval.text import Tokenizer, guess_language, shared_terms

Query = Demand | str
# A learned re-ranker (see `matcher.learning`): given the engine, the query, its candidates and the
# default partner order (numbers, scores), returns the new order and the scores to report.
Reranker = Callable[["MatchEngine", Query, list[str], Candidates, Fused, NDArray[np.int64], NDArray[np.float32]],
                    tuple[NDArray[np.int64], NDArray[np.float32]]]
SURFACE_CACHE_SIZE = 128  # query texts whose stem -> word maps are kept
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
        self, encoder, params: EngineParams | None = None, tokenizer: Callable[[str], list[str]] | None = None
    ):
        self.encoder = encoder
        self.params = params or EngineParams()
        self.tokenizer = tokenizer or Tokenizer()
        self._surface_tokenizer = Tokenizer(stem=False)
        self._surface_cache: dict[str, dict[str, str]] = {}  # query text -> surface map (read-only)
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
        """Index everything (encodes what the embedding cache does not already hold)."""
        self.upsert_partners(partners)
        self.upsert_capabilities(capabilities, progress)
        self.upsert_demands(demands, progress)
        return self

    def upsert_partners(self, partners: Iterable[Partner]) -> None:
        for p in partners:
            self.partners[p.id] = p
            self._partner_number(p.id)

    def upsert_capabilities(self, capabilities: Sequence[Capability], progress: Progress | None = None) -> None:
        if not capabilities:
            return
        _no_duplicates(capabilities, "capability")
        for p in partners_from_capabilities(list(capabilities)):
            self.partners.setdefault(p.id, p)
        texts = [c.full_text for c in capabilities]
        vectors = self.encoder.encode_documents(texts, progress) if progress else self.encoder.encode_documents(texts)
        self._caps.add(
            [c.id for c in capabilities], self.tokenizer_batch(texts), vectors, _languages(capabilities, texts)
        )
        nums = np.array([self._partner_number(c.partner_id) for c in capabilities], dtype=np.int64)
        grown = np.zeros(len(self._caps.ids), dtype=np.int64)
        grown[: len(self._partner_of_row)] = self._partner_of_row
        grown[len(grown) - len(nums) :] = nums
        self._partner_of_row = grown
        self.capabilities.update({c.id: c for c in capabilities})

    def upsert_demands(self, demands: Sequence[Demand], progress: Progress | None = None) -> None:
        if not demands:
            return
        _no_duplicates(demands, "demand")
        texts = [d.full_text for d in demands]
        vectors = self.encoder.encode_documents(texts, progress) if progress else self.encoder.encode_documents(texts)
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

    def remove_partner(self, partner_id: str) -> None:
        """Removes the partner and all its capabilities."""
        self.remove_capabilities([c.id for c in self.capabilities.values() if c.partner_id == partner_id])
        self.partners.pop(partner_id, None)

    def tokenizer_batch(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.tokenizer(t) for t in texts]

    # -- demand (or text) to partners and capabilities -------------------------------------
    def match_partners(self, query: Query, *, k: int = 10, filters: Filters | None = None) -> list[PartnerMatch]:
        """Ranked partners with their best capabilities, shared terms and score parts."""
        _check_k(k)
        (qvec,), (qtok,) = self._encode_queries([query])
        cand, fused = self._fused_capabilities(qvec, qtok, filters)
        partners, scores = aggregate(fused, self._partner_of_row, self.params.aggregation)
        if self.reranker is not None:
            default_scores = dict(zip(partners.tolist(), scores.tolist()))
            partners, scores = self.reranker(self, query, qtok, cand, fused, partners, scores)
        else:
            default_scores = dict(zip(partners[:k].tolist(), scores[:k].tolist()))
        surface = self._surface_map(query, qtok)
        weights = self._term_weights(qtok, self._caps)  # once per query, not once per evidence
        out = []
        for rank, (pnum, score) in enumerate(zip(partners[:k], scores[:k]), start=1):
            pos = top_rows_of_partner(fused, self._partner_of_row, int(pnum), self.params.evidence)
            hits = tuple(self._capability_hit(cand, fused, int(i), qtok, surface, weights) for i in pos)
            pid = self._partner_ids[int(pnum)]
            best = hits[0].parts
            out.append(
                PartnerMatch(
                    partner_id=pid,
                    partner_name=self.partners[pid].name if pid in self.partners else pid,
                    score=float(score),
                    rank=rank,
                    evidence=hits,
                    shared_terms=merge_terms([h.shared_terms for h in hits]),
                    components={
                        "partner": float(default_scores[int(pnum)]),
                        "best_capability": hits[0].score,
                        "support": float(default_scores[int(pnum)]) - hits[0].score,
                        "dense": best.dense,
                        "lexical": best.lexical,
                        "lexical_weight": best.lexical_weight,
                        **({"learned": float(score)} if self.reranker is not None else {}),
                    },
                )
            )
        return out

    def match_capabilities(self, query: Query, *, k: int = 10, filters: Filters | None = None) -> list[CapabilityHit]:
        _check_k(k)
        (qvec,), (qtok,) = self._encode_queries([query])
        cand, fused = self._fused_capabilities(qvec, qtok, filters)
        surface, weights = self._surface_map(query, qtok), self._term_weights(qtok, self._caps)
        return [self._capability_hit(cand, fused, int(i), qtok, surface, weights) for i in top_k(fused.score, k)]

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

    def match_partners_batch(self, demands: Sequence[Demand], *, k: int = 10) -> dict[str, list[PartnerMatch]]:
        """Full matches with reasons for many demands (encodes their queries in one batch)."""
        _check_k(k)
        self._encode_queries(demands)  # warms the embedding cache in batches
        return {d.id: self.match_partners(d, k=k) for d in demands}

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
        """Demands relevant to a free text (e.g. what an institute can do)."""
        _check_k(k)
        (qvec,), (qtok,) = self._encode_queries([query])
        return self._demand_hits(qvec, qtok, k, filters, self._surface_map(query, qtok))

    def demands_for_partner(self, partner_id: str, *, k: int = 10, filters: Filters | None = None) -> list[DemandHit]:
        """Demands relevant to a partner's whole capability profile.

        The profile vector is the normalised mean of the partner's capability embeddings
        (already computed, so this encodes nothing); its terms are all its capabilities' terms."""
        _check_k(k)
        caps = [c for c in self.capabilities.values() if c.partner_id == partner_id]
        if not caps:
            raise NotFoundError(f"partner '{partner_id}' has no capabilities")
        vecs = np.stack([self._caps.vector(c.id) for c in caps])
        qvec = vecs.mean(axis=0)
        qvec = (qvec / max(np.linalg.norm(qvec), 1e-12)).astype(np.float32)
        qtok = [t for c in caps for t in self._caps.tokens[self._caps.row_of[c.id]]]
        surface: dict[str, str] = {}
        for c in caps:
            surface.update(self._surface_map(c.full_text))
        return self._demand_hits(qvec, qtok, k, filters, surface)

    def _demand_hits(self, qvec, qtok, k, filters, surface) -> list[DemandHit]:
        allowed = self._demand_mask(filters)
        (cand,) = self._dems.candidates(qvec[None, :], [qtok], depth=self.params.fusion.depth, allowed=allowed)
        fused = fuse(cand, self.params.fusion)
        weights = self._term_weights(qtok, self._dems)
        out = []
        for rank, i in enumerate(top_k(fused.score, k), start=1):
            row = int(fused.rows[i])
            did = self._dems.ids[row]
            terms = self._display_terms(qtok, self._dems.tokens[row], surface, self._dems, weights)
            out.append(
                DemandHit(did, self.demands[did].title, float(fused.score[i]), rank, _parts(cand, fused, i), terms)
            )
        return out

    # -- internals -------------------------------------------------------------------------
    def _encode_queries(self, queries: Sequence[Query], progress: Progress | None = None):
        texts = [q.full_text if isinstance(q, Demand) else str(q) for q in queries]
        if not all(t.strip() for t in texts):
            raise MatcherError("empty query text")
        vecs = self.encoder.encode_queries(texts, progress) if progress else self.encoder.encode_queries(texts)
        return np.asarray(vecs, dtype=np.float32), [self._query_tokens(q, t) for q, t in zip(queries, texts)]

    def _query_tokens(self, query: Query, text: str) -> list[str]:
        """A stored, unchanged demand reuses the tokens computed when it was indexed."""
        if isinstance(query, Demand):
            row = self._dems.row_of.get(query.id)
            stored = self.demands.get(query.id) if row is not None else None
            if stored is not None and stored.full_text == text:
                return self._dems.tokens[row]
        return self.tokenizer(text)

    def _fused_capabilities(self, qvec, qtok, filters: Filters | None) -> tuple[Candidates, Fused]:
        (cand,) = self._caps.candidates(
            qvec[None, :], [qtok], depth=self.params.fusion.depth, allowed=self._capability_mask(filters)
        )
        return cand, fuse(cand, self.params.fusion)

    def _capability_hit(self, cand: Candidates, fused: Fused, i: int, qtok, surface, weights=None) -> CapabilityHit:
        row = int(fused.rows[i])
        cid = self._caps.ids[row]
        cap = self.capabilities[cid]
        terms = self._display_terms(qtok, self._caps.tokens[row], surface, self._caps, weights)
        return CapabilityHit(cid, cap.partner_id, cap.title, float(fused.score[i]), _parts(cand, fused, i), terms)

    def _term_weights(self, qtok, coll: Collection) -> dict[str, float]:
        """idf of each query term the collection knows: the order of the shown shared terms."""
        bm = coll.bm25
        idf = bm.idf()
        return {t: float(idf[j]) for t in set(qtok) if (j := bm.vocabulary_.get(t)) is not None}

    def _display_terms(
        self, qtok, dtok, surface: dict[str, str], coll: Collection, weights: dict[str, float] | None = None
    ) -> tuple[str, ...]:
        """weights: `_term_weights(qtok, coll)` when the caller shows several hits for one query."""
        bm = coll.bm25
        if weights is None:
            weights = self._term_weights(qtok, coll)
        # In a corpus of some size, a word in more than a tenth of the texts explains nothing.
        min_idf = float(np.log1p(9.0)) if bm.n_docs_ >= 50 else 0.0
        return tuple(surface.get(t, t) for t in shared_terms(qtok, dtok, weights, min_idf=min_idf))

    def _surface_map(self, query, stems: list[str] | None = None) -> dict[str, str]:
        """Stem -> the word as the query wrote it, so reasons show words, not stems.

        stems: the query's tokens when already computed (saves tokenising it again)."""
        text = query.full_text if isinstance(query, Demand) else str(query)
        cached = self._surface_cache.get(text)
        if cached is not None:
            return cached
        stems = self.tokenizer(text) if stems is None else stems
        words = self._surface_tokenizer(text)
        surface = dict(zip(stems, words)) if len(stems) == len(words) else {}
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
