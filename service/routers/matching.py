"""Matching: ranked partners for a demand or a text; demands for a text or a partner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service import matching
from service.auth.tokens import Principal
from service.deps import Context, CtxDep, PrincipalDep, StaffOrEnterpriseDep, StaffOrInstituteDep, filter_list
from service.errors import Forbidden, NotFound
from service.routers.demands import visible_demand
from service.schemas import DemandSearchRequest, DemandSearchResult, IdStr, MatchOptions, MatchResult, TextMatchRequest
from service.storage import store

router = APIRouter(tags=["matching"])
# the limits of MatchOptions, stated in the schema of the query
Filters50, Filters10 = filter_list(50), filter_list(10)
KQuery = Annotated[int | None, Query(ge=1, le=1000, description="how many results (default from settings)")]


def _demand_matches(ctx: Context, principal: Principal, demand_id: str, opts: MatchOptions) -> MatchResult:
    row = visible_demand(ctx, principal, demand_id)
    results, k, rev, report = matching.match_report(ctx, store.demand_record(row), opts,
                                                    show_reasons=principal.is_staff, source="api",
                                                    who=principal.name)
    return MatchResult(demand_id=demand_id, k=k, revision=rev, results=results, **_verdict(report))


def _verdict(report) -> dict:
    advice = None if report.suitable else matching.NO_SUITABLE_ADVICE.format(best=report.best_fit)
    return {"suitable": report.suitable, "best_fit": report.best_fit, "advice": advice}


@router.get("/api/demands/{demand_id}/matches", response_model=MatchResult)
def demand_matches(ctx: CtxDep, principal: StaffOrEnterpriseDep, demand_id: IdStr, k: KQuery = None,
                   industry: Filters50 = None, region: Filters50 = None, partner_type: Filters10 = None,
                   language: Filters10 = None) -> MatchResult:
    """Ranked partners for a stored demand, each with its best capabilities as reasons,
    the terms they share with the demand and the score components."""
    try:
        opts = MatchOptions(k=k, industry=industry or [], region=region or [], partner_type=partner_type or [],
                            language=language or [])
    except ValidationError as exc:  # e.g. more partner_type values than MatchOptions allows: a 422, not a 500
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None
    return _demand_matches(ctx, principal, demand_id, opts)


@router.post("/api/demands/{demand_id}/matches", response_model=MatchResult)
def demand_matches_post(ctx: CtxDep, principal: StaffOrEnterpriseDep, demand_id: IdStr,
                        body: MatchOptions | None = None) -> MatchResult:
    """As the GET, with the options in a JSON body."""
    return _demand_matches(ctx, principal, demand_id, body or MatchOptions())


@router.post("/api/match", response_model=MatchResult)
def match_text(ctx: CtxDep, principal: PrincipalDep, body: TextMatchRequest) -> MatchResult:
    """Ranked partners for a free text (a demand not filed yet)."""
    results, k, rev, report = matching.match_report(ctx, body.text, body, source="text", who=principal.name)
    return MatchResult(text=body.text, k=k, revision=rev, results=results, **_verdict(report))


@router.post("/api/demands/search", response_model=DemandSearchResult)
def search_demands(ctx: CtxDep, principal: StaffOrInstituteDep, body: DemandSearchRequest) -> DemandSearchResult:
    """Demands relevant to a free text. Institutes get published, non-confidential demands
    without contact fields."""
    results, k, rev = matching.search_demands(ctx, principal, text=body.text, k=body.k, industry=body.industry,
                                              region=body.region, language=body.language)
    return DemandSearchResult(text=body.text, k=k, revision=rev, results=results)


@router.get("/api/partners/{partner_id}/demands", response_model=DemandSearchResult)
def partner_demands(ctx: CtxDep, principal: StaffOrInstituteDep, partner_id: IdStr, k: KQuery = None,
                    industry: Filters50 = None, region: Filters50 = None,
                    language: Filters10 = None) -> DemandSearchResult:
    """Demands relevant to a partner's whole capability profile (an institute: its own only)."""
    if principal.role == "institute" and principal.partner_id != partner_id:
        raise Forbidden("an institute sees demands for its own profile only")
    with ctx.db.connect() as conn:
        if store.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner '{partner_id}'")
    results, k, rev = matching.search_demands(ctx, principal, partner_id=partner_id, k=k, industry=industry or (),
                                              region=region or (), language=language or ())
    return DemandSearchResult(partner_id=partner_id, k=k, revision=rev, results=results)
