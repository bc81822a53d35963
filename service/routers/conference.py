"""Conference batch runs as background jobs (staff): start, follow, resume, fetch the files.

API under /api/conference/jobs (token header); the page /conference and its file links use
the sign-in cookie, like the other pages.
"""

from __future__ import annotations

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
from service.schemas import Page
from service.storage import store
from service.views.render import render

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
def get_job(ctx: CtxDep, principal: StaffDep, job_id: str) -> ConferenceJobPublic:
    """Status, progress (demands ranked of all), stage, and once done the summary: the
    assignment's explanation lines, objective, greedy objective, gap and the files."""
    return job_out(jobs_of(ctx).get(job_id))


@router.post(JOBS + "/{job_id}/resume", status_code=202, response_model=ConferenceJobPublic)
def resume_job(ctx: CtxDep, principal: StaffDep, job_id: str) -> ConferenceJobPublic:
    """Queue an interrupted or failed job again (409 otherwise). Demands already in its
    ranking checkpoint are not ranked again."""
    return job_out(jobs_of(ctx).resume(job_id))


@router.get(JOBS + "/{job_id}/files", response_model=list[JobFile])
def job_files(ctx: CtxDep, principal: StaffDep, job_id: str) -> list[JobFile]:
    """The output files of a finished job (409 while it is not done)."""
    jobs = jobs_of(ctx)
    row = jobs.get(job_id)
    if row["status"] != "done":
        raise Conflict(f"job '{job_id}' is {row['status']}; its files are listed once it is done")
    return [JobFile(name=name, size=path.stat().st_size, media_type=media_type(name),
                    url=f"{JOBS}/{job_id}/files/{quote(name)}") for name, path in jobs.files(row)]


@router.get(JOBS + "/{job_id}/files/{name:path}", response_class=Response,
            responses={200: {"description": "conference.xlsx, a CSV or an agenda (HTML)"}})
def job_file(ctx: CtxDep, principal: StaffDep, job_id: str, name: str) -> Response:
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
    try:
        body = ConferenceJobCreate.model_validate(form_params(values))
        jobs_of(ctx).submit(body, created_by=principal.name)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return _page(request, ctx, principal, form=values, errors=errors, status=422)
    except ApiError as exc:
        errors = [{"field": ".".join(str(p) for p in d.get("loc", [])[1:]), "message": d.get("message", "")}
                  for d in exc.details] or [{"field": "", "message": exc.message}]
        return _page(request, ctx, principal, form=values, errors=errors, status=exc.status)
    return RedirectResponse("/conference?started=1", status_code=303)


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
    }, principal=principal, status=status)


# -- the form ----------------------------------------------------------------------------------
_SPLIT = re.compile(r"[\s,;，；、]+")


def _lines(text: str) -> list[list[str]]:
    """Non-empty lines split on commas or tabs ("D1,P1" -> ["D1", "P1"])."""
    return [[c.strip() for c in re.split(r"[,\t，]", line)] for line in text.splitlines() if line.strip()]


def form_params(values: dict[str, str]) -> dict:
    """The form's fields as ConferenceJobCreate input; empty fields keep the defaults.

    Pins, exclusions: lines "demand_id,partner_id"; contracts: "enterprise,partner_id";
    availability: "enterprise|partner,id,09:00-11:00;14:00-15:00"; demand ids and rules:
    separated by spaces, commas or new lines."""
    out: dict = {}
    for key in ("k", "capacity", "min_per_demand", "max_per_demand", "slot_minutes", "tables", "min_score",
                "slots", "title", "chunk_size"):
        if values.get(key, "").strip():
            out[key] = values[key].strip()
    out["include_unpublished"] = values.get("include_unpublished") in ("1", "on", "true")
    if values.get("industry", "").strip():
        out["industry"] = [values["industry"].strip()]
    ids = [i for i in _SPLIT.split(values.get("demand_ids", "")) if i]
    if ids:
        out["demand_ids"] = ids
    rules = [r for r in re.split(r"[\s,;]+", values.get("exclusion_rules", "")) if r]
    if rules:
        out["exclusion_rules"] = rules
    for key, cols in (("pins", ("demand_id", "partner_id")), ("exclusions", ("demand_id", "partner_id")),
                      ("contracts", ("enterprise", "partner_id")), ("availability", ("side", "id", "windows"))):
        rows = _lines(values.get(key, ""))
        if rows:
            out[key] = [dict(zip(cols, r[:len(cols) - 1] + [",".join(r[len(cols) - 1:])])) for r in rows]
    return out

