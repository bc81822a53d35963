"""The web page (server-rendered, Chinese and English): sign in, demands, a demand with its
ranked partners and feedback, spreadsheet upload, and an institute's own demand search.

Pages authenticate with an HttpOnly cookie holding the token (set by /login), never with a
header; the API never reads the cookie. Form posts must come from this site (Origin check,
SameSite cookie).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from matcher.errors import InputError
from matcher.retrieval.reasons import partner_reason
from service import matching
from service.auth import policy
from service.auth.tokens import Principal
from service.deps import Context, CtxDep, PageQuery
from service.errors import Forbidden, NotFound, translate
from service.importer import import_file, parse_mapping, upload_name
from service.jobs.landscape import load_links
from service.review import review_state
from service.routers.feedback import record_feedback
from service.schemas import PIPELINE_STATUSES, REASON_CODES, FeedbackCreate, MatchOptions
from service.storage import changes, feedback, store
from service.views.render import TOKEN_COOKIE, LoginRequired, page_lang, render, safe_next

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
PARTNER_TYPES = ("university", "institute", "team", "enterprise", "other")


def page_principal(request: Request, ctx: CtxDep) -> Principal:
    """The signed-in user from the cookie; otherwise a redirect to /login."""
    principal = ctx.principal_for(request.cookies.get(TOKEN_COOKIE))
    if principal is None:
        raise LoginRequired
    request.state.role = principal.role
    return principal


def same_origin(request: Request) -> None:
    """Refuse form posts from other sites (in addition to the SameSite cookie). `Origin: null`
    (sandboxed frames, data: URLs, some redirects) cannot prove it is this site: refused too."""
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise Forbidden("cross-site form post refused", key="err_cross_site")


PageUser = Annotated[Principal, Depends(page_principal)]


def page_roles(*roles: str):
    def check(principal: PageUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"the role '{principal.role}' may not open this page", key="err_role_page")
        return principal

    return check


StaffPage = Annotated[Principal, Depends(page_roles("admin", "staff"))]
InstitutePage = Annotated[Principal, Depends(page_roles("institute"))]


# -- sign in and out ----------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "failed": False})


@router.post("/login", dependencies=[Depends(same_origin)])
def login(request: Request, ctx: CtxDep, token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    principal = ctx.principal_for(token.strip())
    if principal is None:
        return render(request, "login.html", {"next": safe_next(next), "failed": True}, status=401)
    request.state.role = principal.role
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.strip(), httponly=True, samesite="lax",
                        secure=ctx.settings.cookie_secure, max_age=12 * 3600)
    return response


@router.post("/logout", dependencies=[Depends(same_origin)])
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


@router.get("/")
def home(principal: PageUser) -> Response:
    return RedirectResponse("/institute" if principal.role == "institute" else "/demands", status_code=303)


# -- demands ------------------------------------------------------------------------------
@router.get("/demands")
def demands_page(request: Request, ctx: CtxDep, principal: PageUser, q: PageQuery = "", industry: PageQuery = "",
                 region: PageQuery = "", mode: str = "keyword", page: int = 1) -> Response:
    """Search and filter the demands the user may see (keyword, or semantic for staff/institutes)."""
    page = min(max(1, page), 10**6)  # an offset SQL can hold
    scope = policy.demand_scope(principal)
    semantic_allowed = principal.role != "enterprise"
    scores: dict[str, float] = {}
    with ctx.db.connect() as conn:
        facets = store.demand_facets(conn, scope)
    if mode == "semantic" and semantic_allowed and q.strip():
        hits, _, _ = matching.search_demands(ctx, principal, text=q.strip(), k=PAGE_SIZE * 3,
                                             industry=[industry] if industry else (),
                                             region=[region] if region else ())
        items = [h.demand for h in hits]
        scores = {h.demand.id: h.score for h in hits}
        total, pages = len(items), 1
    else:
        mode = "keyword"
        where = scope + store.demand_filters(industry=[industry] if industry else (),
                                             region=[region] if region else (), q=q or None)
        with ctx.db.connect() as conn:
            rows, total = store.list_demands(conn, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        items = [policy.demand_out(principal, r) for r in rows]
        pages = max(1, -(-total // PAGE_SIZE))
    return render(request, "demands.html", {
        "items": items, "total": total, "q": q, "industry": industry, "region": region, "mode": mode,
        "facets": facets, "page": page, "pages": pages, "scores": scores, "semantic_allowed": semantic_allowed,
        "state": review_state,
    }, principal=principal)


def _demand_page(request: Request, ctx: Context, principal: Principal, demand_id: str, *,
                 error: str | None = None, review_error: dict | None = None, status: int = 200) -> Response:
    with ctx.db.connect() as conn:
        row = store.get_demand(conn, demand_id)
    if row is None or not policy.can_see_demand(principal, row):
        raise NotFound(f"no demand '{demand_id}'", key="err_no_demand", params={"id": demand_id})
    demand = policy.demand_out(principal, row)
    qp = request.query_params
    partner_type = qp.get("partner_type", "")
    try:
        k = max(1, min(int(qp.get("k", ctx.settings.default_k)), 50))
    except ValueError:
        k = ctx.settings.default_k
    matches = None
    verdict: dict = {}
    reasons: dict[str, str] = {}
    if principal.is_staff or principal.role == "enterprise":
        opts = MatchOptions(k=k, partner_type=[partner_type] if partner_type else [])
        matches, _, _, report = matching.match_report(ctx, store.demand_record(row), opts,
                                                      show_reasons=principal.is_staff, source="page",
                                                      who=principal.name)
        verdict = {"suitable": report.suitable, "best_fit": report.best_fit}
        lang = page_lang(request)
        reasons = {m.partner_id: partner_reason(m.label, m.evidence[0].title if m.evidence else "", m.shared_terms,
                                                lang) for m in matches}
    history = None
    if principal.is_staff:
        with ctx.db.connect() as conn:
            history, _ = feedback.page(conn, demand_id=demand_id, limit=200)
    changes_seen = policy.sees_contacts(principal)  # staff and the owning enterprise
    merge = merged_into = None
    with ctx.db.connect() as conn:
        change_log = changes.history(conn, demand_id) if changes_seen else None
        if principal.is_staff:
            links, _ = load_links(conn)
            merge = links.merge_of(demand_id)
        target = (row["extra"] or {}).get("merged_into")
        if target and principal.is_staff:
            merged_into = store.get_demand(conn, target)
    terms = [t for m in matches or [] for t in m.shared_terms]
    return render(request, "demand.html", {
        "d": demand, "matches": matches, "history": history, "terms": terms, "k": k,
        "partner_type": partner_type, "partner_types": PARTNER_TYPES, "statuses": PIPELINE_STATUSES,
        "reason_codes": REASON_CODES,
        "error": error, "saved": qp.get("saved") == "1", "review_error": review_error,
        "review_state": review_state(row), "change_log": change_log, "merge": merge, "merged_into": merged_into,
        "reviewed": qp.get("reviewed", ""), "filed": qp.get("filed") == "1",
        "saved_demand": qp.get("saved_demand") == "1",
        "can_edit": policy.can_edit_demand(principal, row) and (principal.is_staff or not row["published"]),
        "verdict": verdict, "reasons": reasons,
    }, principal=principal, status=status)


@router.get("/demands/{demand_id}")
def demand_page(request: Request, ctx: CtxDep, principal: PageUser, demand_id: str) -> Response:
    """One demand; staff and the owning enterprise also see the ranked partners with reasons."""
    return _demand_page(request, ctx, principal, demand_id)


@router.post("/demands/{demand_id}/feedback", dependencies=[Depends(same_origin)])
def demand_feedback(request: Request, ctx: CtxDep, principal: StaffPage, demand_id: str,
                    partner_id: Annotated[str, Form()] = "", status: Annotated[str, Form()] = "",
                    reason: Annotated[str, Form()] = "", reason_code: Annotated[str, Form()] = "",
                    amount: Annotated[str, Form()] = "") -> Response:
    try:
        value = float(amount.replace(",", "").replace("，", "").strip()) if amount.strip() else None
    except ValueError:
        return _demand_page(request, ctx, principal, demand_id, error="err_feedback_amount", status=422)
    try:
        body = FeedbackCreate(demand_id=demand_id, partner_id=partner_id, status=status, reason=reason,
                              reason_code=reason_code, amount=value)
    except ValidationError:
        return _demand_page(request, ctx, principal, demand_id, error="err_feedback_invalid", status=422)
    record_feedback(ctx, principal.name, body, source="page")
    return RedirectResponse(f"/demands/{demand_id}?saved=1#feedback", status_code=303)


@router.get("/feedback/export")
def feedback_export(ctx: CtxDep, principal: StaffPage, demand_id: str | None = None) -> Response:
    """The feedback CSV for signed-in staff (the API's export needs a token header)."""
    with ctx.db.connect() as conn:
        text = feedback.to_csv(feedback.all_rows(conn, demand_id=demand_id))
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="techmatch-feedback.csv"'})


# -- upload -------------------------------------------------------------------------------
@router.get("/upload")
def upload_form(request: Request, principal: StaffPage) -> Response:
    return render(request, "upload.html", {"kind": "demands"}, principal=principal)


@router.post("/upload", dependencies=[Depends(same_origin)])
def upload(request: Request, ctx: CtxDep, principal: StaffPage, kind: Annotated[str, Form()] = "demands",
           file: Annotated[UploadFile | None, File()] = None, mapping: Annotated[str, Form()] = "",
           mode: Annotated[str, Form()] = "update") -> Response:
    """Import a spreadsheet; show the counts, or every row error in a table (nothing imported)."""
    if kind not in ("demands", "capabilities", "partners"):
        kind = "demands"
    try:
        if file is None or not file.filename:
            raise InputError("choose a file to upload", field="file", code="choose_file")
        result = import_file(ctx, kind, file.file.read(), upload_name(file.filename, file.content_type),
                             mapping=parse_mapping(mapping), mode=mode)
    except InputError as exc:
        err = translate(exc)
        return render(request, "upload.html", {"kind": kind, "errors": err.details, "mapping": mapping,
                                               "mode": mode}, principal=principal, status=422)
    return render(request, "upload.html", {"kind": kind, "result": result, "mode": mode}, principal=principal)


# -- institutes ---------------------------------------------------------------------------
@router.get("/institute")
def institute_page(request: Request, ctx: CtxDep, principal: InstitutePage, q: PageQuery = "") -> Response:
    """Demands relevant to the institute's whole profile, and a free-text demand search."""
    profile, _, _ = matching.search_demands(ctx, principal, partner_id=principal.partner_id or "", k=20)
    found = None
    if q.strip():
        found, _, _ = matching.search_demands(ctx, principal, text=q.strip(), k=20)
    with ctx.db.connect() as conn:
        partner = store.get_partner(conn, principal.partner_id or "")
    return render(request, "institute.html", {"profile": profile, "found": found, "q": q, "partner": partner},
                  principal=principal)
