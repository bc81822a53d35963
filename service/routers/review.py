"""Staff review of demands on the page: the queue (pending demands first, with who submitted
them and when) and the actions on one demand: publish, unpublish, return to the enterprise with a
note, merge into an existing demand. Editing is the demand form's (`routers.filing`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from matcher.errors import InputError
from service import review
from service.deps import CtxDep
from service.errors import translate
from service.routers.pages import StaffPage, _demand_page, same_origin
from service.storage import changes, store
from service.views.render import render

router = APIRouter(include_in_schema=False)


@router.get("/review")
def review_queue(request: Request, ctx: CtxDep, principal: StaffPage) -> Response:
    with ctx.db.connect() as conn:
        pending = store.unpublished_demands(conn)
        recent = store.recently_changed_demands(conn)
        submitted = changes.submissions(conn, [r["id"] for r in pending + recent])
    order = {review.PENDING: 0, review.RETURNED: 1, review.MERGED: 2, "": 3}
    pending.sort(key=lambda r: order[review.review_state(r)])  # stable: newest first within a state
    return render(request, "review.html", {
        "pending": pending, "recent": recent, "submitted": submitted, "state": review.review_state,
    }, principal=principal)


@router.post("/demands/{demand_id}/review", dependencies=[Depends(same_origin)])
def review_action(request: Request, ctx: CtxDep, principal: StaffPage, demand_id: str,
                  action: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
                  target: Annotated[str, Form()] = "") -> Response:
    try:
        if action == "publish":
            review.publish(ctx, principal, demand_id)
        elif action == "unpublish":
            review.unpublish(ctx, principal, demand_id, note)
        elif action == "return":
            review.return_to_enterprise(ctx, principal, demand_id, note)
        elif action == "merge":
            review.merge_into(ctx, principal, demand_id, target, note)
        else:
            raise InputError(f"unknown review action '{action}'", field="action", code="review_action")
    except InputError as exc:
        err = translate(exc)
        return _demand_page(request, ctx, principal, demand_id, review_error={"key": err.key, "params": err.params},
                            status=422)
    return RedirectResponse(f"/demands/{demand_id}?reviewed={action}#review", status_code=303)
