"""Feedback: the pipeline of a (demand, partner) pair. Staff record each change (one at a time, in
bulk, from a conference run's assignment, or from a spreadsheet); list it; export it as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from matcher.errors import InputError, InputErrors
from service.deps import CtxDep, PagingDep, StaffDep
from service.errors import Conflict, NotFound, input_error_details
from service.importer import UPLOAD_OPENAPI, upload_name
from service.jobs.live import Change
from service.pipeline_sheet import parse_pipeline_sheet, read_conference_pairs
from service.schemas import (
    FeedbackBulk,
    FeedbackBulkResult,
    FeedbackCreate,
    FeedbackFromConference,
    FeedbackPublic,
    FeedbackStatus,
    IdStr,
    Page,
)
from service.storage import feedback, store

router = APIRouter(prefix="/api/feedback", tags=["feedback"])


def record_feedback(ctx, who: str, body: FeedbackCreate, *, source: str = "api") -> dict:
    """Store one feedback entry (shared by the API and the web page)."""

    def tx(conn):
        if store.get_demand(conn, body.demand_id) is None:
            raise NotFound(f"no demand '{body.demand_id}'")
        if store.get_partner(conn, body.partner_id) is None:
            raise NotFound(f"no partner '{body.partner_id}'")
        row = feedback.add(conn, demand_id=body.demand_id, partner_id=body.partner_id, status=body.status,
                           reason=body.reason, who=who, reason_code=body.reason_code, amount=body.amount,
                           source=source)
        return row, Change()

    return ctx.live.write(tx)


@router.post("", status_code=201, response_model=FeedbackPublic)
def create_feedback(ctx: CtxDep, principal: StaffDep, body: FeedbackCreate) -> FeedbackPublic:
    """Record a pipeline change for a pair: suggested, contacted, meeting_held, agreed (optional
    `amount`), declined_enterprise / declined_partner (with a `reason_code`: wrong_field, too_far,
    too_expensive, no_capacity, already_solved, other) and free text `reason`. The first API's
    accepted / rejected are still accepted. Every change is kept with who and when."""
    return FeedbackPublic.model_validate(record_feedback(ctx, principal.name, body))


@router.get("", response_model=Page[FeedbackPublic])
def list_feedback(ctx: CtxDep, principal: StaffDep, paging: PagingDep, demand_id: IdStr | None = None,
                  partner_id: IdStr | None = None, status: FeedbackStatus | None = None) -> Page:
    """Feedback, newest first; filter by demand, partner or status."""
    with ctx.db.connect() as conn:
        rows, total = feedback.page(conn, demand_id=demand_id, partner_id=partner_id, status=status,
                                    limit=paging.limit, offset=paging.offset)
    return Page(items=[FeedbackPublic.model_validate(r) for r in rows], total=total, limit=paging.limit,
                offset=paging.offset)


@router.get("/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a byte-order mark"}})
def export_feedback(ctx: CtxDep, principal: StaffDep, demand_id: IdStr | None = None) -> Response:
    """All feedback (or one demand's) as CSV for Excel; formula-like cells are neutralised."""
    with ctx.db.connect() as conn:
        text = feedback.to_csv(feedback.all_rows(conn, demand_id=demand_id))
    return Response(content="\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="techmatch-feedback.csv"'})


# -- the pipeline in bulk -------------------------------------------------------------------
def record_many(ctx, who: str, items: list[FeedbackCreate], *, source: str, rows: list[int] | None = None,
                file: str | None = None) -> int:
    """Record many changes in one transaction: all or nothing; unknown ids are named with their item
    number (or the spreadsheet `rows` they came from)."""

    def tx(conn):
        problems = []
        dem = store.get_demands(conn, sorted({i.demand_id for i in items}))
        par = store.get_partners(conn, sorted({i.partner_id for i in items}))
        for n, i in zip(rows or range(1, len(items) + 1), items):
            if i.demand_id not in dem:
                problems.append(InputError(f"no demand '{i.demand_id}'", file=file, row=n, field="demand_id"))
            if i.partner_id not in par:
                problems.append(InputError(f"no partner '{i.partner_id}'", file=file, row=n, field="partner_id"))
        if problems:
            raise InputErrors(problems, file=file)
        n = feedback.add_many(conn, [i.model_dump() for i in items], who=who, source=source)
        return n, Change()

    return ctx.live.write(tx)


@router.post("/bulk", response_model=FeedbackBulkResult, status_code=201)
def create_feedback_bulk(ctx: CtxDep, principal: StaffDep, body: FeedbackBulk) -> FeedbackBulkResult:
    """Record many pipeline changes at once (all or nothing); ids the database lacks: 409 naming
    each item."""
    return FeedbackBulkResult(recorded=_record_known(ctx, principal.name, body.items, source="bulk"))


def _record_known(ctx, who: str, items: list[FeedbackCreate], *, source: str) -> int:
    """`record_many` for a request body: unknown ids are a conflict with the stored records (409),
    not an invalid request; each problem names its item (`row`) and field."""
    try:
        return record_many(ctx, who, items, source=source)
    except InputErrors as exc:
        raise Conflict(f"{len(exc.errors)} item(s) name records that do not exist; nothing was recorded",
                       details=input_error_details(exc), code="unknown_records") from None


@router.post("/from-conference/{job_id}", response_model=FeedbackBulkResult, status_code=201)
def feedback_from_conference(ctx: CtxDep, principal: StaffDep, job_id: IdStr,
                             body: FeedbackFromConference | None = None) -> FeedbackBulkResult:
    """Give every pair a finished conference run assigned one status (default: suggested)."""
    body = body or FeedbackFromConference()
    if ctx.jobs is None:
        raise NotFound("conference jobs are not available")
    row = ctx.jobs.get(job_id)
    if row["status"] != "done":
        raise Conflict(f"conference job '{job_id}' is {row['status']}, not done")
    path = ctx.jobs.job_dir(job_id) / "assignment.csv"
    if not path.exists():
        raise NotFound(f"conference job '{job_id}' has no assignment.csv")
    pairs = read_conference_pairs(path.read_bytes())
    items = [FeedbackCreate(demand_id=d, partner_id=p, status=body.status, reason=body.reason or f"conference {job_id}")
             for d, p in pairs]
    if not items:
        return FeedbackBulkResult(recorded=0)
    return FeedbackBulkResult(recorded=_record_known(ctx, principal.name, items, source="conference"))


@router.post("/import", response_model=FeedbackBulkResult, status_code=201, openapi_extra=UPLOAD_OPENAPI,
             responses={422: {"description": "the file has problems; `error.details` lists each one as "
                                             "{file, row, field, message}; nothing was recorded"}})
def import_feedback(ctx: CtxDep, principal: StaffDep, file: Annotated[UploadFile, File()]) -> FeedbackBulkResult:
    """Import pipeline changes from a spreadsheet (CSV/XLSX; Chinese or English headers and values):
    columns demand_id, partner_id, status, and optionally reason_code, amount, reason."""
    name = upload_name(file.filename, file.content_type)
    items, rows = parse_pipeline_sheet(file.file.read(), name)
    return FeedbackBulkResult(recorded=record_many(ctx, principal.name, items, source="import", rows=rows, file=name))
