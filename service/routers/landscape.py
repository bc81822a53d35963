"""The demand landscape (staff): clusters, partner coverage, weak directions, near-duplicates,
and the staff decisions on duplicates (merge or link).

The landscape is built in the background and cached per database revision. While a build
runs, answers come from the previous build (marked `stale`); before the first build the API
answers 202 (`/api/landscape`) or 503 (the workbook, the report) and the page refreshes itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from matcher.errors import MatcherError
from service.deps import Context, CtxDep, StaffDep
from service.errors import ApiError, Invalid, NotReady, translate
from service.jobs.landscape import (
    REPORT_CSP,
    DemandLinksChange,
    DemandLinksPublic,
    LandscapeCache,
    LandscapeState,
    change_links,
    load_links,
    summary,
)
from service.routers.pages import StaffPage, same_origin
from service.storage import store
from service.views.render import render

router = APIRouter(tags=["landscape"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RETRY_SECONDS = "3"


class LandscapeSummary(BaseModel):
    """status: "ready" (built at the current revision), or "computing": a build is running and
    `landscape` is the previous result (`stale`), or null when there is none yet (then 202)."""

    status: str
    current_revision: int
    stale: bool
    landscape: dict[str, Any] | None


def cache_of(ctx: Context) -> LandscapeCache:
    assert ctx.landscape is not None, "create_app wires the landscape cache"
    return ctx.landscape


def _failed(state: LandscapeState) -> ApiError:
    assert state.result is not None
    return Invalid(f"the landscape could not be built: {state.result.error}", code="landscape_failed")


def _built(state: LandscapeState):
    """The latest successful build (maybe stale); 422 when the current data fails, 503 when
    nothing was built yet."""
    if state.status == "failed":
        raise _failed(state)
    if state.result is None or state.result.land is None:
        raise NotReady("the landscape is still being built; try again shortly", headers={"Retry-After": RETRY_SECONDS})
    return state.result


@router.get("/api/landscape", response_model=LandscapeSummary,
            responses={202: {"model": LandscapeSummary, "description": "nothing built yet; try again shortly"}})
def get_landscape(ctx: CtxDep, principal: StaffDep) -> Response:
    """Clusters with names and sizes, coverage, weak clusters and duplicate groups (each with
    the staff decision: open, partly, linked, merged), for the current demands. While the data
    changed and a new build runs, the previous result comes back with `stale: true`."""
    state = cache_of(ctx).view()
    if state.status == "failed":
        raise _failed(state)
    data = None
    if state.result is not None and state.result.land is not None:
        with ctx.db.connect() as conn:
            links, _ = load_links(conn)
        data = summary(state.result, links)
    body = LandscapeSummary(status=state.status, current_revision=state.current_revision, stale=state.stale,
                            landscape=data)
    headers = {"Retry-After": RETRY_SECONDS} if state.status == "computing" else None
    return JSONResponse(jsonable_encoder(body), status_code=200 if data is not None else 202, headers=headers)


def _xlsx(ctx: Context) -> Response:
    cache = cache_of(ctx)
    result = _built(cache.view())
    name = f"landscape-r{result.revision}.xlsx"
    return Response(cache.xlsx(result), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/landscape.xlsx", response_class=Response,
            responses={200: {"content": {XLSX: {}}, "description": "the landscape tables as a workbook"}})
def get_landscape_xlsx(ctx: CtxDep, principal: StaffDep) -> Response:
    """The landscape's tables (clusters, demands, coverage, weak clusters, duplicates, ...)
    as XLSX, from the latest build (its revision is in the file name); 503 before the first
    build. Confidential demands lose enterprise and text."""
    return _xlsx(ctx)


@router.post("/api/demands/links", response_model=DemandLinksPublic)
def post_demand_links(ctx: CtxDep, principal: StaffDep, body: DemandLinksChange) -> DemandLinksPublic:
    """Merge demands (handled as one; every original record stays untouched), unmerge, link
    related demands or unlink them. Returns every stored decision."""
    return change_links(ctx.db, body, who=principal.name)


# -- pages ------------------------------------------------------------------------------------
@router.get("/landscape", include_in_schema=False)
def landscape_page(request: Request, ctx: CtxDep, principal: StaffPage) -> Response:
    return _page(request, ctx, principal)


def _page(request: Request, ctx: Context, principal, *, error: str | None = None, status: int = 200) -> Response:
    state = cache_of(ctx).view()
    with ctx.db.connect() as conn:
        links, meta = load_links(conn)
        data = summary(state.result, links) if state.result is not None and state.result.land else None
        member_ids = {i for m in links.merges.values() for i in m.member_ids}
        titles = {i: r["title"] for i, r in store.get_demands(
            conn, sorted({i for g in (data or {}).get("duplicate_groups", []) for i in g["demand_ids"]}
                         | member_ids | {x for k in links.links for x in k})).items()}
    return render(request, "landscape.html", {
        "state": state, "data": data, "links": links, "meta": meta, "titles": titles, "error": error,
        "body": state.result.body if state.result is not None and state.result.land else "",
        "saved": request.query_params.get("saved") == "1",
    }, principal=principal, status=status)


@router.get("/landscape/report", include_in_schema=False)
def landscape_report(ctx: CtxDep, principal: StaffPage) -> Response:
    """The report as one self-contained HTML page, as `techmatch landscape` writes it."""
    result = _built(cache_of(ctx).view())
    return HTMLResponse(result.html, headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/landscape.xlsx", include_in_schema=False)
def landscape_xlsx_page(ctx: CtxDep, principal: StaffPage) -> Response:
    return _xlsx(ctx)


@router.post("/landscape/links", include_in_schema=False, dependencies=[Depends(same_origin)])
def landscape_links(request: Request, ctx: CtxDep, principal: StaffPage, action: Annotated[str, Form()] = "",
                    ids: Annotated[str, Form()] = "", primary: Annotated[str, Form()] = "",
                    merge_id: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    """The page's merge / link / undo buttons."""
    try:
        ids_given = list(dict.fromkeys(i for i in ids.split(",") if i.strip()))  # a typed id twice counts once
        change = DemandLinksChange(action=action, demand_ids=ids_given,
                                   primary=primary or None, merge_id=merge_id or None, note=note)
        change_links(ctx.db, change, who=principal.name)
    except ValidationError as exc:
        return _page(request, ctx, principal, error="; ".join(e["msg"] for e in exc.errors()), status=422)
    except (ApiError, MatcherError) as exc:
        err = translate(exc)
        return _page(request, ctx, principal, error=err.message, status=err.status)
    return RedirectResponse("/landscape?saved=1#decisions", status_code=303)
