"""Feedback: staff record what happened to a suggestion; list it; export it as CSV."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import CtxDep, PagingDep, StaffDep
from service.errors import NotFound
from service.jobs.live import Change
from service.schemas import FeedbackCreate, FeedbackPublic, FeedbackStatus, Page
from service.storage import feedback, store

router = APIRouter(prefix="/api/feedback", tags=["feedback"])


def record_feedback(ctx, who: str, body: FeedbackCreate) -> dict:
    """Store one feedback entry (shared by the API and the web page)."""

    def tx(conn):
        if store.get_demand(conn, body.demand_id) is None:
            raise NotFound(f"no demand '{body.demand_id}'")
        if store.get_partner(conn, body.partner_id) is None:
            raise NotFound(f"no partner '{body.partner_id}'")
        row = feedback.add(conn, demand_id=body.demand_id, partner_id=body.partner_id, status=body.status,
                           reason=body.reason, who=who)
        return row, Change()

    return ctx.live.write(tx)


@router.post("", status_code=201, response_model=FeedbackPublic)
def create_feedback(ctx: CtxDep, principal: StaffDep, body: FeedbackCreate) -> FeedbackPublic:
    """Record contacted / meeting_held / accepted / rejected (with a reason) for a suggestion."""
    return FeedbackPublic.model_validate(record_feedback(ctx, principal.name, body))


@router.get("", response_model=Page[FeedbackPublic])
def list_feedback(ctx: CtxDep, principal: StaffDep, paging: PagingDep, demand_id: str | None = None,
                  partner_id: str | None = None, status: FeedbackStatus | None = None) -> Page:
    """Feedback, newest first; filter by demand, partner or status."""
    with ctx.db.connect() as conn:
        rows, total = feedback.page(conn, demand_id=demand_id, partner_id=partner_id, status=status,
                                    limit=paging.limit, offset=paging.offset)
    return Page(items=[FeedbackPublic.model_validate(r) for r in rows], total=total, limit=paging.limit,
                offset=paging.offset)


@router.get("/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a byte-order mark"}})
def export_feedback(ctx: CtxDep, principal: StaffDep, demand_id: str | None = None) -> Response:
    """All feedback (or one demand's) as CSV for Excel; formula-like cells are neutralised."""
    with ctx.db.connect() as conn:
        text = feedback.to_csv(feedback.all_rows(conn, demand_id=demand_id))
    return Response(content="\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="techmatch-feedback.csv"'})
