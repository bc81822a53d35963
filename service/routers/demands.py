"""Demands: list, create, read, update, delete, as each role may (see `policy`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.auth import policy
from service.auth.tokens import Principal
from service.deps import CtxDep, FilterList, PagingDep, PrincipalDep, SearchQuery, StaffOrEnterpriseDep
from service.errors import Conflict, Forbidden, NotFound
from service.jobs.landscape import link_info, load_links
from service.jobs.live import Change
from service.schemas import DemandCreate, DemandDetail, DemandOut, DemandPublicRedacted, DemandUpdate, IdStr, Page
from service.storage import changes as history
from service.storage import store

router = APIRouter(prefix="/api/demands", tags=["demands"])


def visible_demand(ctx, principal: Principal, demand_id: str) -> dict:
    """The demand row if `principal` may see it; 404 otherwise (also when it exists)."""
    with ctx.db.connect() as conn:
        row = store.get_demand(conn, demand_id)
    if row is None or not policy.can_see_demand(principal, row):
        raise NotFound(f"no demand '{demand_id}'")
    return row


@router.get("", response_model=Page[DemandOut])
def list_demands(ctx: CtxDep, principal: PrincipalDep, paging: PagingDep, industry: FilterList = None,
                 region: FilterList = None, language: FilterList = None, q: SearchQuery = None,
                 published: bool | None = None, confidential: bool | None = None) -> Page:
    """Demands the caller may see, newest first. `q` matches id, title and text."""
    where = policy.demand_scope(principal) + store.demand_filters(
        industry=industry or (), region=region or (), language=language or (), q=q,
        published=published, confidential=confidential)
    with ctx.db.connect() as conn:
        rows, total = store.list_demands(conn, where, limit=paging.limit, offset=paging.offset)
    return Page(items=[policy.demand_out(principal, r) for r in rows], total=total,
                limit=paging.limit, offset=paging.offset)


@router.post("", status_code=201, response_model=DemandOut)
def create_demand(ctx: CtxDep, principal: StaffOrEnterpriseDep, body: DemandCreate) -> DemandOut:
    """Staff create any demand; an enterprise's demand is its own and starts unpublished."""
    values = body.model_dump(exclude={"id", "owner", "published"})
    if principal.role == "enterprise":
        if body.owner not in (None, principal.enterprise) or body.enterprise not in ("", principal.enterprise):
            raise Forbidden("an enterprise files demands only under its own name")
        if body.published is not None:
            raise Forbidden("only bureau staff publish demands")
        if body.id is not None:
            # A chosen id could collide with a demand the enterprise may not see, and a 409 would
            # tell it that demand exists: ids are generated, whatever exists.
            raise Forbidden("enterprises do not choose demand ids: omit `id` and one is generated "
                            "(keep your own reference in `extra`)")
        values["enterprise"] = principal.enterprise
        owner, published = principal.enterprise, False
    else:
        owner = body.owner if body.owner is not None else body.enterprise
        published = True if body.published is None else body.published
    demand_id = body.id or store.new_id("D")

    def tx(conn):
        if store.get_demand(conn, demand_id) is not None:
            raise Conflict(f"demand '{demand_id}' already exists")
        row = store.insert_demand(conn, {**values, "id": demand_id, "owner": owner, "published": published})
        history.record(conn, demand_id, "created", who=principal.name, role=principal.role, note="API")
        return row, Change(demands=[store.demand_record(row)])

    return policy.demand_out(principal, ctx.live.write(tx))


@router.get("/{demand_id}", response_model=DemandDetail | DemandPublicRedacted)
def get_demand(ctx: CtxDep, principal: PrincipalDep, demand_id: IdStr) -> DemandOut:
    """One demand; for staff with `links`: its merge group and linked demands (see
    `POST /api/demands/links`)."""
    out = policy.demand_out(principal, visible_demand(ctx, principal, demand_id))
    if not principal.is_staff:
        return out
    with ctx.db.connect() as conn:
        links, _ = load_links(conn)
    return DemandDetail(**out.model_dump(), links=link_info(links, demand_id))


@router.patch("/{demand_id}", response_model=DemandOut)
def update_demand(ctx: CtxDep, principal: StaffOrEnterpriseDep, demand_id: IdStr, body: DemandUpdate) -> DemandOut:
    """Change the given fields. Enterprises edit their own demands but not owner/published."""
    visible_demand(ctx, principal, demand_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if principal.role == "enterprise" and ({"owner", "published"} & changes.keys()
                                           or changes.get("enterprise", principal.enterprise) != principal.enterprise):
        raise Forbidden("only bureau staff change a demand's owner, enterprise or publication")

    def tx(conn):
        row = store.get_demand(conn, demand_id)
        if row is None or not policy.can_edit_demand(principal, row):
            raise NotFound(f"no demand '{demand_id}'")
        merged = {**row, **changes}
        if not merged["title"].strip() and not merged["text"].strip():
            raise Conflict("a demand needs a title or a text; the stored one has no other", code="needs_text")
        diff = history.diff(row, merged)
        row = store.update_demand(conn, demand_id, changes) if changes else row
        if diff:
            action = "edited"
            if set(diff) == {"published"}:
                action = "published" if row["published"] else "unpublished"
            history.record(conn, demand_id, action, who=principal.name, role=principal.role, changes=diff, note="API")
        return row, Change(demands=[store.demand_record(row)])

    return policy.demand_out(principal, ctx.live.write(tx))


@router.delete("/{demand_id}", status_code=204, response_class=Response)
def delete_demand(ctx: CtxDep, principal: StaffOrEnterpriseDep, demand_id: IdStr) -> Response:
    """Delete a demand (its feedback goes with it); it never appears in results again."""
    visible_demand(ctx, principal, demand_id)

    def tx(conn):
        row = store.get_demand(conn, demand_id)
        if row is None or not policy.can_edit_demand(principal, row):
            raise NotFound(f"no demand '{demand_id}'")
        store.delete_demand(conn, demand_id)
        history.record(conn, demand_id, "deleted", who=principal.name, role=principal.role, note="API")
        return None, Change(removed_demands=[demand_id])

    ctx.live.write(tx)
    return Response(status_code=204)
