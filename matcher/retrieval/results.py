"""Result types: ranked partners, capabilities and demands, each carrying its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScoreParts:
    """Score components of one (query, target) pair.

    dense: cosine similarity of the embeddings (-1..1); language_offset and language_scale:
    the mean and spread of the query's cosines over documents in this document's language,
    used to standardise `dense` before scaling (see `collection`); lexical: raw BM25 score;
    dense_norm / lexical_norm: the per-query normalised values that were fused (0..1);
    lexical_weight: how much lexical evidence counted for this query (0..1);
    fused: the final capability-level score.
    """

    dense: float
    lexical: float
    dense_norm: float
    lexical_norm: float
    lexical_weight: float
    fused: float
    language_offset: float = 0.0
    language_scale: float = 1.0


@dataclass(frozen=True)
class CapabilityHit:
    """A capability that matched, with its score parts and the terms it shares with the query."""

    capability_id: str
    partner_id: str
    title: str
    score: float
    parts: ScoreParts
    shared_terms: tuple[str, ...] = ()
    fit: float = 0.0  # calibrated P(staff judge the pair relevant), see `calibration`
    label: str = "weak"  # strong / possible / weak


@dataclass(frozen=True)
class PartnerMatch:
    """A ranked partner for one query. `evidence` is the partner's best capabilities, best first."""

    partner_id: str
    partner_name: str
    score: float
    rank: int
    evidence: tuple[CapabilityHit, ...]
    shared_terms: tuple[str, ...] = ()
    components: dict[str, float] = field(default_factory=dict)
    fit: float = 0.0  # calibrated P(staff judge the pair relevant): the same from every direction
    label: str = "weak"  # strong / possible / weak
    reason: str = ""  # one line in words


@dataclass(frozen=True)
class PartnerReport:
    """Ranked partners for one query and whether any of them is worth meeting.

    best_fit: the highest fit among the partners the filters allow (not only the k shown);
    suitable: best_fit reaches "possible". When it does not, staff should look outside the
    known partners (the landscape's recruiting directions)."""

    matches: list[PartnerMatch]
    best_fit: float
    suitable: bool


@dataclass(frozen=True)
class DemandHit:
    """A demand found for a text or a partner profile."""

    demand_id: str
    title: str
    score: float
    rank: int
    parts: ScoreParts
    shared_terms: tuple[str, ...] = ()
    fit: float = 0.0
    label: str = "weak"
    capability_id: str = ""  # for a partner profile: the capability that fits this demand best
    reason: str = ""
