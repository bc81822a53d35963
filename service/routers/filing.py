"""The demand form with its filling assistant: an enterprise (or staff) files a demand, edits
it, and sees as it types what the demand lacks, similar demands already filed and the partners
it would match today.

The assistant's part of the page is rendered by ``POST /demands/assist`` (static/assist.js
swaps it in as the user types, without a reload); without JavaScript the form's "Check" button
renders the whole page with it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from matcher.errors import InputError
from matcher.filling import check_demand
from matcher.records import Demand
from matcher.retrieval.engine import Filters
from service import matching, review
from service.auth import policy
from service.auth.tokens import Principal
from service.deps import Context, CtxDep
from service.errors import NotFound, translate
from service.routers.pages import page_roles, same_origin
from service.schemas import MatchOptions
from service.storage import store
from service.views.render import render

router = APIRouter(include_in_schema=False)
FilerPage = Annotated[Principal, Depends(page_roles("admin", "staff", "enterprise"))]
ASSIST_PARTNERS = 5
ASSIST_SIMILAR = 5


def similar_demands(ctx: Context, principal: Principal, text: str, *, exclude: str = "") -> list[dict[str, Any]]:
    """Demands already filed that read like `text` (possible duplicates), from any enterprise.
    An enterprise sees other enterprises' demands only when they are published and not
    confidential; its own always (linked)."""
    k, filters = ASSIST_SIMILAR * 4, Filters()
    with ctx.live.read() as engine:
        hits = ctx.live.answer("demands", text, k, filters,
                               compute=lambda: engine.search_demands(text, k=k, filters=filters))
    with ctx.db.connect() as conn:
        rows = store.get_demands(conn, [h.demand_id for h in hits])
    out = []
    for h in hits:
        row = rows.get(h.demand_id)
        if row is None or row["id"] == exclude:
            continue
        own = principal.role == "enterprise" and bool(principal.enterprise) and row["owner"] == principal.enterprise
        if not (principal.is_staff or own or (row["published"] and not row["confidential"])):
            continue
        out.append({"row": row, "score": h.score, "own": own, "linked": principal.is_staff or own,
                    "shared_terms": list(h.shared_terms)})
        if len(out) == ASSIST_SIMILAR:
            break
    return out


def assistant(ctx: Context, principal: Principal, form: dict[str, Any], *, exclude: str = "") -> dict[str, Any] | None:
    """What the assistant shows for the form's current title and text (None while both are empty)."""
    title, text = str(form.get("title") or "").strip(), str(form.get("text") or "").strip()
    if not title and not text:
        return None
    check = check_demand(title, text)
    draft = Demand(id="draft", title=title, text=text, industry=str(form.get("industry") or ""),
                   region=str(form.get("region") or ""), language=review.detect_language(title + text))
    partners, _, _ = matching.match_partners(ctx, draft, MatchOptions(k=ASSIST_PARTNERS))
    return {"check": check, "partners": partners,
            "similar": similar_demands(ctx, principal, f"{title}\n{text}", exclude=exclude)}


def _choices(ctx: Context) -> dict[str, list[str]]:
    """Industries and regions for the form: the values the database holds (see views.localize.terms)."""
    with ctx.db.connect() as conn:
        return store.demand_facets(conn, [])


def _form_page(request: Request, ctx: Context, principal: Principal, form: dict[str, Any], *, demand=None,
               error: dict | None = None, status: int = 200, check: bool = True) -> Response:
    return render(request, "demand_form.html", {
        "form": form, "demand": demand, "facets": _choices(ctx), "error": error,
        "assist": assistant(ctx, principal, form, exclude=demand["id"] if demand else "") if check else None,
    }, principal=principal, status=status)


def _error(exc: InputError) -> dict:
    err = translate(exc)
    return {"key": err.key, "params": err.params, "field": exc.field, "message": str(exc)}


FORM_KEYS = ("title", "text", "industry", "region", "contact", "enterprise", "confidential")


async def _form_values(request: Request) -> dict[str, Any]:
    data = await request.form()
    return {k: str(data.get(k) or "") for k in FORM_KEYS} | {"action": str(data.get("action") or "")}


@router.get("/demands/new")
def new_demand_form(request: Request, ctx: CtxDep, principal: FilerPage) -> Response:
    form = {"enterprise": principal.enterprise or ""} if principal.role == "enterprise" else {}
    return _form_page(request, ctx, principal, form)


@router.post("/demands/new", dependencies=[Depends(same_origin)])
async def new_demand(request: Request, ctx: CtxDep, principal: FilerPage) -> Response:
    form = await _form_values(request)
    if form["action"] == "check":
        return _form_page(request, ctx, principal, form)
    try:
        row = review.file_demand(ctx, principal, form, publish=form["action"] == "publish" and principal.is_staff)
    except InputError as exc:
        return _form_page(request, ctx, principal, form, error=_error(exc), status=422)
    return RedirectResponse(f"/demands/{row['id']}?filed=1", status_code=303)


@router.post("/demands/assist", dependencies=[Depends(same_origin)])
async def assist(request: Request, ctx: CtxDep, principal: FilerPage) -> Response:
    """The assistant's section for the form's current content (swapped in by assist.js)."""
    form = await _form_values(request)
    data = await request.form()
    exclude = str(data.get("demand_id") or "")
    return render(request, "_assistant.html", {"assist": assistant(ctx, principal, form, exclude=exclude)},
                  principal=principal)


def _editable_row(ctx: Context, principal: Principal, demand_id: str) -> dict:
    with ctx.db.connect() as conn:
        row = store.get_demand(conn, demand_id)
    if row is None or not policy.can_edit_demand(principal, row):
        raise NotFound(f"no demand '{demand_id}'", key="err_no_demand", params={"id": demand_id})
    return row


@router.get("/demands/{demand_id}/edit")
def edit_demand_form(request: Request, ctx: CtxDep, principal: FilerPage, demand_id: str) -> Response:
    row = _editable_row(ctx, principal, demand_id)
    if principal.role == "enterprise" and row["published"]:
        return RedirectResponse(f"/demands/{demand_id}", status_code=303)
    form = {k: row[k] for k in FORM_KEYS}
    return _form_page(request, ctx, principal, form, demand=row)


@router.post("/demands/{demand_id}/edit", dependencies=[Depends(same_origin)])
async def edit_demand(request: Request, ctx: CtxDep, principal: FilerPage, demand_id: str) -> Response:
    row = _editable_row(ctx, principal, demand_id)
    form = await _form_values(request)
    if form["action"] == "check":
        return _form_page(request, ctx, principal, form, demand=row)
    try:
        review.edit_demand(ctx, principal, demand_id, form)
        if form["action"] == "publish" and principal.is_staff:
            review.publish(ctx, principal, demand_id)
    except InputError as exc:
        return _form_page(request, ctx, principal, form, demand=row, error=_error(exc), status=422)
    return RedirectResponse(f"/demands/{demand_id}?saved_demand=1", status_code=303)
