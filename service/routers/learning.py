"""The funnel report and the learned ranker: API and staff pages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from matcher.errors import InputError, MatcherError
from service.deps import CtxDep, StaffDep
from service.errors import Conflict, NotReady
from service.importer import upload_name
from service.jobs import learning
from service.pipeline_sheet import parse_pipeline_sheet
from service.routers.feedback import record_many
from service.routers.pages import StaffPage, same_origin
from service.storage import funnel
from service.views.render import render

router = APIRouter(tags=["learning"])
Dimension = Literal["industry", "region", "partner", "month"]


class FunnelRowPublic(BaseModel):
    group: str
    suggestions: int
    contacts: int
    meetings: int
    agreements: int
    amount: float
    declined: int
    contact_rate: float | None
    meeting_rate: float | None
    agreement_rate: float | None
    overall_rate: float | None


class FunnelPublic(BaseModel):
    by: str
    rows: list[FunnelRowPublic]
    total: FunnelRowPublic


class RankerModelPublic(BaseModel):
    version: str
    created_at: str
    backend: str
    deployed: bool
    trained_on: str
    gate: str
    importances: dict[str, float]


class RankerState(BaseModel):
    live: str
    models: list[RankerModelPublic]


class TrainResultPublic(BaseModel):
    deployed: bool
    version: str | None
    reason: str
    lists: int
    demands: int
    outcomes: int
    estimator: str | None = None  # how outcomes became training rows (matcher.learning.logged)
    propensity: dict[str, float] | None = None
    validation: dict[str, dict[str, float]] | None = None
    importances: dict[str, float] | None = None


def _funnel(ctx, by: str) -> FunnelPublic:
    with ctx.db.connect() as conn:
        rows, total = funnel.report(conn, by)
    return FunnelPublic(by=by, rows=[FunnelRowPublic(**r.as_dict()) for r in rows],
                        total=FunnelRowPublic(**total.as_dict()))


@router.get("/api/funnel", response_model=FunnelPublic)
def get_funnel(ctx: CtxDep, principal: StaffDep, by: Dimension = "industry") -> FunnelPublic:
    """Suggestions, contacts, meetings, agreements and amounts by industry, county or district,
    partner or month, with conversion rates (each pair counted at the furthest stage it reached)."""
    return _funnel(ctx, by)


def _xlsx(ctx) -> Response:
    with ctx.db.connect() as conn:
        data = funnel.to_xlsx(conn)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="techmatch-funnel.xlsx"'})


@router.get("/api/funnel.xlsx", response_class=Response,
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
                             "description": "one sheet per dimension"}})
def get_funnel_xlsx(ctx: CtxDep, principal: StaffDep) -> Response:
    """The funnel as XLSX: sheets industry, region, partner and month."""
    return _xlsx(ctx)


def _state(ctx) -> RankerState:
    return RankerState(live=ctx.live.ranker_version,
                       models=[RankerModelPublic(**m) for m in learning.models(ctx.settings.rankers_dir())])


def _train(ctx, who: str) -> TrainResultPublic:
    if not ctx.live.wait_ready(timeout=0):
        raise NotReady("the index is still being built")
    res = learning.train(ctx.db, ctx.live, ctx.settings.rankers_dir(), who=who,
                         evidence=ctx.settings.ranker_evidence)
    return TrainResultPublic(**{k: res.get(k) for k in TrainResultPublic.model_fields})


@router.get("/api/learning/models", response_model=RankerState)
def ranker_models(ctx: CtxDep, principal: StaffDep) -> RankerState:
    """Every trained ranker version, the live one, and each model's feature weights."""
    return _state(ctx)


@router.post("/api/learning/train", response_model=TrainResultPublic)
def ranker_train(ctx: CtxDep, principal: StaffDep) -> TrainResultPublic:
    """Train from the impressions and the pipeline outcomes; deployed only if it beats the live
    default order on held-out demands."""
    return _train(ctx, principal.name)


@router.post("/api/learning/rollback", response_model=RankerState)
def ranker_rollback(ctx: CtxDep, principal: StaffDep) -> RankerState:
    """Undo the last deployment: the previous model, or the default order, is live again."""
    try:
        learning.rollback(ctx.db, ctx.live, ctx.settings.rankers_dir())
    except MatcherError as exc:  # nothing deployed to undo: the stored state, not the request, says no
        raise Conflict(str(exc), code="nothing_to_roll_back") from exc
    return _state(ctx)


# -- pages (web pages, not API operations: out of the OpenAPI schema like every other page) -
@router.get("/funnel", include_in_schema=False)
def funnel_page(request: Request, ctx: CtxDep, principal: StaffPage, by: str = "industry",
                message: str = "", error: str = "") -> Response:
    by = by if by in funnel.DIMENSIONS else "industry"
    return render(request, "funnel.html", {"f": _funnel(ctx, by), "dims": funnel.DIMENSIONS,
                                           "ranker": _state(ctx), "message": message, "error": error},
                  principal=principal)


@router.get("/funnel.xlsx", include_in_schema=False)
def funnel_xlsx_page(ctx: CtxDep, principal: StaffPage) -> Response:
    return _xlsx(ctx)


@router.post("/funnel/train", include_in_schema=False, dependencies=[Depends(same_origin)])
def funnel_train(request: Request, ctx: CtxDep, principal: StaffPage) -> Response:
    res = _train(ctx, principal.name)
    return render(request, "funnel.html", {"f": _funnel(ctx, "industry"), "dims": funnel.DIMENSIONS,
                                           "ranker": _state(ctx), "train": res}, principal=principal)


@router.post("/funnel/rollback", include_in_schema=False, dependencies=[Depends(same_origin)])
def funnel_rollback(ctx: CtxDep, principal: StaffPage) -> Response:
    try:
        learning.rollback(ctx.db, ctx.live, ctx.settings.rankers_dir())
    except Exception as exc:
        return RedirectResponse(f"/funnel?error={type(exc).__name__}", status_code=303)
    return RedirectResponse("/funnel#ranker", status_code=303)


@router.post("/funnel/import", include_in_schema=False, dependencies=[Depends(same_origin)])
def funnel_import(request: Request, ctx: CtxDep, principal: StaffPage,
                  file: Annotated[UploadFile, File()]) -> Response:
    name = upload_name(file.filename, file.content_type)
    try:
        items, rows = parse_pipeline_sheet(file.file.read(), name)
        n = record_many(ctx, principal.name, items, source="import", rows=rows, file=name)
    except InputError as exc:
        return render(request, "funnel.html", {"f": _funnel(ctx, "industry"), "dims": funnel.DIMENSIONS,
                                               "ranker": _state(ctx), "error": str(exc)},
                      principal=principal, status=422)
    return RedirectResponse(f"/funnel?message={n}", status_code=303)
