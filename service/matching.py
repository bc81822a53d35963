"""Matching as the service offers it: engine results mapped onto current database rows.

Ids the engine returns are looked up in the database; anything deleted meanwhile is
dropped, so a deleted record never appears in an answer. For a stored demand, a partner whose
latest feedback is "rejected" is marked (with the reason, for staff) and moved below the
partners not rejected, where staff decide whom to contact next; the scores are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from matcher.errors import NotFoundError
from matcher.records import Demand
from matcher.retrieval.engine import Filters
from matcher.retrieval.results import ScoreParts
from service.auth import policy
from service.auth.tokens import Principal
from service.deps import Context
from service.schemas import DemandHitPublic, EvidencePublic, MatchOptions, PartnerMatchPublic, ScorePartsPublic
from service.storage import feedback, store
from service.storage.impressions import Shown


def parts_out(parts: ScoreParts) -> ScorePartsPublic:
    return ScorePartsPublic(dense=parts.dense, lexical=parts.lexical, dense_norm=parts.dense_norm,
                            lexical_norm=parts.lexical_norm, lexical_weight=parts.lexical_weight,
                            fused=parts.fused, language_offset=getattr(parts, "language_offset", 0.0),
                            language_scale=getattr(parts, "language_scale", 1.0))


def partner_filters(opts: MatchOptions) -> Filters:
    return Filters(industries=frozenset(opts.industry), regions=frozenset(opts.region),
                   partner_types=frozenset(opts.partner_type), languages=frozenset(opts.language))


NO_SUITABLE_ADVICE = ("No known partner reaches a possible fit (best fit {best:.2f}). Consider partners from "
                      "outside the city: see the recruiting directions of the demand landscape (/landscape).")


def match_partners(ctx: Context, query: Demand | str, opts: MatchOptions, *, show_reasons: bool = True,
                   source: str = "api", who: str = "") -> tuple[list[PartnerMatchPublic], int, int]:
    """Ranked partners with reasons for a demand or a text. Returns (results, k, revision)."""
    results, k, rev, _ = match_report(ctx, query, opts, show_reasons=show_reasons, source=source, who=who)
    return results, k, rev


def match_report(ctx: Context, query: Demand | str, opts: MatchOptions, *, show_reasons: bool = True,
                 source: str = "api", who: str = ""):
    """`match_partners` plus the engine's verdict: (results, k, revision, PartnerReport).

    show_reasons: whether a rejection's reason is included (staff); the mark and the order
    are the same for everyone who may see the list. The list served is recorded as impressions
    (`source`: page, api or text; `who` asked)."""
    k = ctx.k(opts.k)
    filters = partner_filters(opts)
    with ctx.live.read() as engine:
        report = ctx.live.answer("partners", query, k, filters,
                                 compute=lambda: engine.match_report(query, k=k, filters=filters))
        matches = report.matches
        rev = ctx.live.revision
        version, described = ctx.live.ranker_version, ctx.live.describe_engine()
    with ctx.db.connect() as conn:
        shown = store.shown_capabilities(conn, [h.capability_id for m in matches for h in m.evidence])
        decided = feedback.latest_by_partner(conn, query.id) if isinstance(query, Demand) else {}
    rejected = {pid: f for pid, f in decided.items() if f["status"] == "rejected"}
    out: list[PartnerMatchPublic] = []
    for m in matches:
        # a partner is shown with its capabilities that still exist and are still its own
        current = {h.capability_id: shown[h.capability_id] for h in m.evidence
                   if h.capability_id in shown and shown[h.capability_id]["partner_id"] == m.partner_id}
        evidence = [EvidencePublic(capability_id=h.capability_id, title=current[h.capability_id]["title"],
                                   score=h.score, parts=parts_out(h.parts), shared_terms=list(h.shared_terms),
                                   fit=h.fit, label=h.label)
                    for h in m.evidence if h.capability_id in current]
        if not evidence:  # the partner, or all its shown capabilities, deleted meanwhile
            continue
        partner = current[evidence[0].capability_id]
        no = rejected.get(m.partner_id)
        out.append(PartnerMatchPublic(
            rank=len(out) + 1, partner_id=m.partner_id, partner_name=partner["partner_name"],
            partner_type=partner["partner_type"], region=partner["partner_region"], score=m.score,
            shared_terms=list(m.shared_terms), components=dict(m.components), evidence=evidence,
            fit=m.fit, label=m.label, reason=m.reason,
            rejected=no is not None, rejected_reason=(no["reason"] if no and show_reasons else ""),
            rejected_at=no["created_at"] if no else None))
    if rejected:  # stable: each group keeps the engine's order
        out = [m for m in out if not m.rejected] + [m for m in out if m.rejected]
        out = [m.model_copy(update={"rank": i}) for i, m in enumerate(out, start=1)]
    if ctx.impressions is not None:
        ctx.impressions.record(
            source=source, who=who, demand_id=query.id if isinstance(query, Demand) else None,
            text=None if isinstance(query, Demand) else str(query),
            shown=[Shown(r.rank, r.partner_id, r.score, r.components) for r in out],
            engine=described, model_version=version, revision=rev, k=k)
    return out, k, rev, report


def search_demands(ctx: Context, principal: Principal, *, text: str | None = None,
                   partner_id: str | None = None, k: int | None = None, industry: Sequence[str] = (),
                   region: Sequence[str] = (), language: Sequence[str] = ()) -> tuple[list[DemandHitPublic], int, int]:
    """Demands relevant to a text or to a partner's profile, as `principal` may see them."""
    k = ctx.k(k)
    with ctx.db.connect() as conn:
        unpublished = frozenset() if principal.is_staff else store.unpublished_demand_ids(conn)
    filters = policy.demand_search_filters(principal, unpublished=unpublished, industry=industry,
                                           region=region, language=language)
    with ctx.live.read() as engine:
        rev = ctx.live.revision
        if partner_id is not None:
            try:
                hits = ctx.live.answer("demands_for_partner", partner_id, k, filters,
                                       compute=lambda: engine.demands_for_partner(partner_id, k=k, filters=filters))
            except NotFoundError:  # a partner without capabilities has no profile yet
                hits = []
        else:
            hits = ctx.live.answer("demands", text or "", k, filters,
                                   compute=lambda: engine.search_demands(text or "", k=k, filters=filters))
    with ctx.db.connect() as conn:
        rows = store.get_demands(conn, [h.demand_id for h in hits])
    out: list[DemandHitPublic] = []
    for h in hits:
        row = rows.get(h.demand_id)
        if row is None or not policy.can_see_demand(principal, row):
            continue
        out.append(DemandHitPublic(rank=len(out) + 1, score=h.score, shared_terms=list(h.shared_terms),
                                   parts=parts_out(h.parts), demand=policy.demand_out(principal, row),
                                   fit=h.fit, label=h.label, capability_id=h.capability_id, reason=h.reason))
    return out, k, rev
