"""Conference batch runs as background jobs (staff): start, follow, resume, fetch the files.

API under /api/conference/jobs (token header); the page /conference and its file links use
the sign-in cookie, like the other pages.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import ValidationError

from service.deps import Context, CtxDep, PagingDep, StaffDep
from service.errors import ApiError, Conflict
from service.jobs.conference import (
    STATUSES,
    ConferenceJobCreate,
    ConferenceJobPublic,
    ConferenceJobs,
    JobFile,
    job_out,
    list_jobs,
    media_type,
)
from service.jobs.landscape import REPORT_CSP
from service.routers.pages import StaffPage, same_origin
from service.schemas import IdStr, Page
from service.storage import store
from service.views.i18n import translator
from service.views.render import page_lang, render

router = APIRouter(tags=["conference"])
JOBS = "/api/conference/jobs"


def jobs_of(ctx: Context) -> ConferenceJobs:
    assert ctx.jobs is not None, "create_app wires the job runner"
    return ctx.jobs


# -- API --------------------------------------------------------------------------------------
@router.post(JOBS, status_code=202, response_model=ConferenceJobPublic)
def create_job(ctx: CtxDep, principal: StaffDep, body: ConferenceJobCreate, response: Response
               ) -> ConferenceJobPublic:
    """Check the parameters (unknown ids, slots, windows, constraints: 422 with every
    problem), then queue the run. Jobs run one at a time; poll the job for progress."""
    row = jobs_of(ctx).submit(body, created_by=principal.name)
    response.headers["Location"] = f"{JOBS}/{row['id']}"
    return job_out(row)


@router.get(JOBS, response_model=Page[ConferenceJobPublic])
def get_jobs(ctx: CtxDep, principal: StaffDep, paging: PagingDep,
             status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None) -> Page:
    """Jobs, newest first."""
    with ctx.db.connect() as conn:
        rows, total = list_jobs(conn, limit=paging.limit, offset=paging.offset, status=status)
    return Page(items=[job_out(r) for r in rows], total=total, limit=paging.limit, offset=paging.offset)


@router.get(JOBS + "/{job_id}", response_model=ConferenceJobPublic)
def get_job(ctx: CtxDep, principal: StaffDep, job_id: IdStr) -> ConferenceJobPublic:
    """Status, progress (demands ranked of all), stage, and once done the summary: the
    assignment's explanation lines, objective, greedy objective, gap and the files."""
    return job_out(jobs_of(ctx).get(job_id))


@router.post(JOBS + "/{job_id}/resume", status_code=202, response_model=ConferenceJobPublic)
def resume_job(ctx: CtxDep, principal: StaffDep, job_id: IdStr) -> ConferenceJobPublic:
    """Queue an interrupted or failed job again (409 otherwise). Demands already in its
    ranking checkpoint are not ranked again."""
    return job_out(jobs_of(ctx).resume(job_id))


@router.get(JOBS + "/{job_id}/files", response_model=list[JobFile])
def job_files(ctx: CtxDep, principal: StaffDep, job_id: IdStr) -> list[JobFile]:
    """The output files of a finished job (409 while it is not done)."""
    jobs = jobs_of(ctx)
    row = jobs.get(job_id)
    if row["status"] != "done":
        raise Conflict(f"job '{job_id}' is {row['status']}; its files are listed once it is done")
    return [JobFile(name=name, size=path.stat().st_size, media_type=media_type(name),
                    url=f"{JOBS}/{job_id}/files/{quote(name)}") for name, path in jobs.files(row)]


@router.get(JOBS + "/{job_id}/files/{name:path}", response_class=Response,
            responses={200: {"description": "conference.xlsx, a CSV or an agenda (HTML)"}})
def job_file(ctx: CtxDep, principal: StaffDep, job_id: IdStr, name: str) -> Response:
    """One output file; only the names the job lists are served (no path tricks)."""
    return _file_response(jobs_of(ctx), job_id, name)


def _file_response(jobs: ConferenceJobs, job_id: str, name: str) -> Response:
    row = jobs.get(job_id)
    path = jobs.file(row, name)
    kind = media_type(name)
    if kind.startswith("text/html"):
        return FileResponse(path, media_type=kind, headers={"Content-Security-Policy": REPORT_CSP})
    return FileResponse(path, media_type=kind, filename=path.name)


# -- the page ----------------------------------------------------------------------------------
@router.get("/conference", include_in_schema=False)
def conference_page(request: Request, ctx: CtxDep, principal: StaffPage) -> Response:
    return _page(request, ctx, principal)


@router.post("/conference", include_in_schema=False, dependencies=[Depends(same_origin)])
async def conference_start(request: Request, ctx: CtxDep, principal: StaffPage) -> Response:
    """Start a job from the form; problems are listed on the page and nothing is queued."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_start, request, ctx, principal, values)


def _start(request: Request, ctx: Context, principal, values: dict[str, str]) -> Response:
    return _submit(request, ctx, principal, form_params(values), values)


def _submit(request: Request, ctx: Context, principal, params: dict, values: dict[str, str]) -> Response:
    """Queue a run; on a problem, the form again with `values` and every problem listed in the
    page's language (nothing queued)."""
    t = translator(page_lang(request))
    try:
        jobs_of(ctx).submit(ConferenceJobCreate.model_validate(params, strict=False),  # form strings
                            created_by=principal.name)
    except ValidationError as exc:
        errors = [page_error(t, e["loc"], code=_pydantic_code(e), params=_pydantic_params(e), message=e["msg"])
                  for e in exc.errors()]
        return _page(request, ctx, principal, form=values, errors=errors, status=422)
    except ApiError as exc:
        errors = [page_error(t, d.get("loc", [])[1:], code=d.get("code") or "", params=d.get("params") or {},
                             message=d.get("message", "")) for d in exc.details]
        if not errors:
            errors = [{"field": "", "message": t(exc.key, **exc.params) if exc.key else exc.message}]
        return _page(request, ctx, principal, form=values, errors=errors, status=exc.status)
    return RedirectResponse("/conference?started=1", status_code=303)


# -- errors in the page's language ---------------------------------------------------------------
# the form's field -> its label's catalog key (the API's names are the form's input names)
FIELD_LABELS = {
    "title": "conf_name", "k": "conf_k", "capacity": "conf_capacity", "min_per_demand": "conf_min",
    "max_per_demand": "conf_max", "min_score": "conf_min_score", "slots": "conf_slots",
    "slot_minutes": "conf_slot_minutes", "tables": "conf_tables", "demand_ids": "conf_demands",
    "industry": "industry", "pins": "conf_pins", "exclusions": "conf_exclusions", "contracts": "conf_contracts",
    "exclusion_rules": "conf_rules", "group_rules": "conf_rules", "rules": "conf_rules",
    "availability": "conf_availability", "quotas": "conf_quotas", "partner_min": "conf_partner_min",
    "alternates": "conf_alternates", "method": "conf_method", "fair": "conf_fair", "pdf": "conf_pdf",
    "include_unpublished": "conf_unpublished", "chunk_size": "conf_chunk_size",
    "schedule_seconds": "conf_schedule_seconds", "floor": "conf_floor",
}
_PYDANTIC_CODES = {
    "int_parsing": "conf_int", "int_from_float": "conf_int", "int_type": "conf_int",
    "float_parsing": "conf_number", "float_type": "conf_number", "finite_number": "conf_number",
    "greater_than_equal": "conf_ge", "less_than_equal": "conf_le", "greater_than": "conf_gt",
    "less_than": "conf_lt", "string_too_long": "conf_too_long", "too_long": "conf_too_many",
    "string_too_short": "conf_empty", "missing": "conf_empty", "literal_error": "conf_choice",
    "bool_parsing": "conf_bool", "string_pattern_mismatch": "conf_bad_id",
}


_ID_PARTS = {"demand_id", "partner_id", "id", "demand_ids", "quotas", "[key]"}
# a list field's column -> its label's catalog key (other columns are not named)
COLUMN_LABELS = {"demand_id": "conf_demand", "partner_id": "conf_partner", "enterprise": "enterprise", "id": "id"}


def _pydantic_code(e: dict) -> str:
    if e["type"] in _PYDANTIC_CODES:
        return _PYDANTIC_CODES[e["type"]]
    if e.get("input") == "":
        return "conf_empty"
    leaf = str(e["loc"][-1]) if e["loc"] else ""
    return "conf_bad_id" if leaf in _ID_PARTS or str(e["loc"][0]) in ("demand_ids", "quotas") else "conf_invalid"


def _pydantic_params(e: dict) -> dict:
    ctx = e.get("ctx") or {}
    limit = next((ctx[k] for k in ("ge", "le", "gt", "lt", "max_length", "min_length") if k in ctx), "")
    return {"limit": limit, "choices": ctx.get("expected", ""), "value": str(e.get("input", ""))[:80]}


def page_error(t, loc, *, code: str, params: dict, message: str) -> dict:
    """One problem as the page shows it: the field's label (with the line of a list field) and
    the message in the page's language; a problem without a text in the catalogs keeps the
    API's English message."""
    parts = [str(x) for x in loc]
    field = parts[0] if parts else ""
    label = t(FIELD_LABELS[field]) if field in FIELD_LABELS else field
    where = [label]
    for part in parts[1:]:
        if part.isdigit():
            where.append(t("conf_line", n=int(part) + 1))
        elif part in COLUMN_LABELS:
            where.append(t(COLUMN_LABELS[part]))
        elif part not in ("windows", "side", "[key]"):
            where.append(part)  # a quota's demand id
    key = f"err_{code}" if code else ""
    text = t(key, **params) if key and key != t(key) else message
    return {"field": " · ".join(where), "message": text, "name": field}


@router.get("/conference/jobs/{job_id}", include_in_schema=False)
def conference_job_page(request: Request, ctx: CtxDep, principal: StaffPage, job_id: str) -> Response:
    """One run's result: the plan in words, both objectives, shortfalls with the diagnosis,
    every meeting with its alternates, and the files (PDF agendas included)."""
    jobs = jobs_of(ctx)
    row = jobs.get(job_id)
    job = job_out(row)
    files = [(name, quote(name)) for name, _ in jobs.files(row)]
    meetings = _csv_rows(jobs, row, "assignment.csv")
    unmet = _csv_rows(jobs, row, "unmet.csv")
    return render(request, "conference_job.html", {
        "j": job, "files": files, "meetings": meetings[:MEETINGS_SHOWN], "n_meetings": len(meetings),
        "file_names": {n for n, _ in files},
        "single": [(n, h) for n, h in files if n.endswith(".pdf") and n != "agendas/all.pdf"],
        "shortfalls": [u for u in unmet if u.get("stage") == "assignment"],
        "partner_shortfalls": [u for u in unmet if u.get("stage") == "partner_minimum"],
        "unscheduled": [u for u in unmet if u.get("stage") not in ("assignment", "partner_minimum", "suggestion")],
        "floor": floor_label(job.params.get("min_score")), "active": job.status in ("queued", "running"),
    }, principal=principal)


@router.post("/conference/jobs/{job_id}/replan", include_in_schema=False, dependencies=[Depends(same_origin)])
async def conference_replan(request: Request, ctx: CtxDep, principal: StaffPage, job_id: str) -> Response:
    """A new run with this run's demands and settings that keeps the meetings ticked on its
    result page (pins) and re-plans the rest: after a cancellation, or once some are confirmed."""
    form = await request.form()
    keep = [str(v) for v in form.getlist("keep")]
    return await run_in_threadpool(_replan, request, ctx, principal, job_id, keep)


def _replan(request: Request, ctx: Context, principal, job_id: str, keep: list[str]) -> Response:
    row = jobs_of(ctx).get(job_id)
    params = dict(row["params"] or {})
    pins = [dict(zip(("demand_id", "partner_id"), pair.split(",", 1), strict=True)) for pair in keep if "," in pair]
    params.update(pins=pins, demand_ids=list(row["demand_ids"] or []))
    values = {"title": str(params.get("title") or ""), "demand_ids": " ".join(params["demand_ids"]),
              "pins": "\n".join(f"{p['demand_id']},{p['partner_id']}" for p in pins)}
    return _submit(request, ctx, principal, params, values)


MEETINGS_SHOWN = 2000  # a page stays light; every meeting is in assignment.csv


def _csv_rows(jobs: ConferenceJobs, row: dict, name: str) -> list[dict[str, str]]:
    if row["status"] != "done" or name not in {n for n, _ in jobs.files(row)}:
        return []
    text = jobs.file(row, name).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@router.post("/conference/jobs/{job_id}/resume", include_in_schema=False, dependencies=[Depends(same_origin)])
def conference_resume(ctx: CtxDep, principal: StaffPage, job_id: str) -> Response:
    jobs_of(ctx).resume(job_id)
    return RedirectResponse("/conference", status_code=303)


@router.get("/conference/jobs/{job_id}/files/{name:path}", include_in_schema=False)
def conference_file(ctx: CtxDep, principal: StaffPage, job_id: str, name: str) -> Response:
    return _file_response(jobs_of(ctx), job_id, name)


def _page(request: Request, ctx: Context, principal, *, form: dict | None = None, errors: list | None = None,
          status: int = 200) -> Response:
    with ctx.db.connect() as conn:
        rows, total = list_jobs(conn, limit=30, offset=0)
        industries = store.demand_facets(conn, [])["industry"]
    jobs = jobs_of(ctx)
    items = [(job_out(r), [(name, quote(name)) for name, _ in jobs.files(r)]) for r in rows]
    active = any(j.status in ("queued", "running") for j, _ in items)
    defaults = ConferenceJobCreate()
    return render(request, "conference.html", {
        "items": items, "total": total, "active": active, "form": form or {}, "errors": errors or [],
        "defaults": defaults, "industries": industries, "started": request.query_params.get("started") == "1",
        "thresholds": fit_thresholds(), "floor_of": floor_label, "methods": METHODS,
    }, principal=principal, status=status)


# -- the form ----------------------------------------------------------------------------------
_SPLIT = re.compile(r"[\s,;，；、]+")
METHODS = ("min_cost_flow", "milp", "greedy")
FLOORS = ("possible", "strong", "none")


def fit_thresholds() -> dict[str, float]:
    """The calibrated fit's label thresholds in use: {"strong": .., "possible": ..}."""
    from matcher.retrieval.calibration import default_calibrator

    th = default_calibrator().thresholds_
    return {"strong": th.strong, "possible": th.possible}


def floor_label(min_score: float | None) -> dict:
    """A run's quality floor as staff read it: the fit label it equals (possible, strong, none)
    or "custom", with its value (None: the default, the "possible" threshold)."""
    th = fit_thresholds()
    value = th["possible"] if min_score is None else float(min_score)
    for name in ("possible", "strong"):
        if abs(value - th[name]) < 1e-9:
            return {"label": name, "value": value}
    return {"label": "none" if value <= 0 else "custom", "value": value}


def _lines(text: str) -> list[list[str]]:
    """Non-empty lines split on commas or tabs ("D1,P1" -> ["D1", "P1"])."""
    return [[c.strip() for c in re.split(r"[,\t，]", line)] for line in text.splitlines() if line.strip()]


_PAIR_RULE = re.compile(r"^[^\s=,]+ *= *[^\s=,]+$")


def rule_lines(text: str) -> list[str]:
    """Rule lines of the form: one per line (or separated by ";"); a line of several
    FIELD=FIELD rules separated by spaces or commas (the old one-line input) is split."""
    out: list[str] = []
    for line in re.split(r"[\n;；]", text):
        line = line.strip()
        if not line:
            continue
        parts = [x for x in re.split(r"[\s,，]+", re.sub(r" *= *", "=", line)) if x]
        out.extend(parts if len(parts) > 1 and all(_PAIR_RULE.match(x) for x in parts) else [line])
    return out


def quota_lines(text: str) -> dict[str, str]:
    """ "D1,3" / "D1 3" / "D1=3" / "D1：3" lines -> {"D1": "3"} (the count is checked as a number
    by the schema, so a bad one is reported with the demand's id)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = [x for x in re.split(r"[\s,，=:：\t]+", line.strip()) if x]
        if parts:
            out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def form_params(values: dict[str, str]) -> dict:
    """The form's fields as ConferenceJobCreate input; empty fields keep the defaults.

    Pins, exclusions: lines "demand_id,partner_id"; contracts: "enterprise,partner_id";
    availability: "enterprise|partner,id,09:00-11:00;14:00-15:00"; quotas: lines "demand_id,N";
    rules: one per line; demand ids: separated by spaces, commas or new lines. The quality floor
    is a fit label (possible, the default; strong; none) unless a number is given."""
    out: dict = {}
    for key in ("k", "capacity", "min_per_demand", "max_per_demand", "slot_minutes", "tables", "min_score",
                "slots", "title", "chunk_size", "partner_min", "alternates", "method"):
        if values.get(key, "").strip():
            out[key] = values[key].strip()
    floor = values.get("floor", "").strip()
    if "min_score" not in out and floor in ("strong", "none"):
        out["min_score"] = fit_thresholds()["strong"] if floor == "strong" else 0.0
    for key in ("include_unpublished", "fair", "pdf"):
        out[key] = values.get(key) in ("1", "on", "true")
    if values.get("industry", "").strip():
        out["industry"] = [values["industry"].strip()]
    ids = [i for i in _SPLIT.split(values.get("demand_ids", "")) if i]
    if ids:
        out["demand_ids"] = ids
    rules = rule_lines(values.get("exclusion_rules", ""))
    if rules:
        out["exclusion_rules"] = rules
    quotas = quota_lines(values.get("quotas", ""))
    if quotas:
        out["quotas"] = quotas
    for key, cols in (("pins", ("demand_id", "partner_id")), ("exclusions", ("demand_id", "partner_id")),
                      ("contracts", ("enterprise", "partner_id")), ("availability", ("side", "id", "windows"))):
        rows = _lines(values.get(key, ""))
        if rows:
            out[key] = [dict(zip(cols, r[:len(cols) - 1] + [",".join(r[len(cols) - 1:])])) for r in rows]
    return out
