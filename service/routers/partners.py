"""Partners (universities, institutes, teams): every role reads, staff write."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.auth import policy
from service.deps import CtxDep, FilterList, PagingDep, PrincipalDep, SearchQuery, StaffDep
from service.errors import Conflict, NotFound
from service.jobs.live import Change
from service.schemas import IdStr, Page, PartnerCreate, PartnerPublic, PartnerUpdate
from service.storage import store

router = APIRouter(prefix="/api/partners", tags=["partners"])


@router.get("", response_model=Page[PartnerPublic])
def list_partners(ctx: CtxDep, principal: PrincipalDep, paging: PagingDep, partner_type: FilterList = None,
                  region: FilterList = None, q: SearchQuery = None) -> Page:
    """Partners with their capability counts. `q` matches id and name."""
    with ctx.db.connect() as conn:
        rows, total = store.list_partners(conn, partner_type=partner_type or (), region=region or (), q=q,
                                          limit=paging.limit, offset=paging.offset)
    return Page(items=[policy.partner_out(principal, r) for r in rows], total=total, limit=paging.limit,
                offset=paging.offset)


@router.post("", status_code=201, response_model=PartnerPublic)
def create_partner(ctx: CtxDep, principal: StaffDep, body: PartnerCreate) -> PartnerPublic:
    partner_id = body.id or store.new_id("P")

    def tx(conn):
        if store.get_partner(conn, partner_id) is not None:
            raise Conflict(f"partner '{partner_id}' already exists")
        row = store.insert_partner(conn, {**body.model_dump(exclude={"id"}), "id": partner_id})
        return row, Change(partners=[store.partner_record(row)])

    return policy.partner_out(principal, ctx.live.write(tx))


@router.get("/{partner_id}", response_model=PartnerPublic)
def get_partner(ctx: CtxDep, principal: PrincipalDep, partner_id: IdStr) -> PartnerPublic:
    with ctx.db.connect() as conn:
        row = store.get_partner(conn, partner_id)
    if row is None:
        raise NotFound(f"no partner '{partner_id}'")
    return policy.partner_out(principal, row)


@router.patch("/{partner_id}", response_model=PartnerPublic)
def update_partner(ctx: CtxDep, principal: StaffDep, partner_id: IdStr, body: PartnerUpdate) -> PartnerPublic:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)

    def tx(conn):
        if store.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner '{partner_id}'")
        row = store.update_partner(conn, partner_id, changes) if changes else store.get_partner(conn, partner_id)
        return row, Change(partners=[store.partner_record(row)])

    return policy.partner_out(principal, ctx.live.write(tx))


@router.delete("/{partner_id}", status_code=204, response_class=Response)
def delete_partner(ctx: CtxDep, principal: StaffDep, partner_id: IdStr) -> Response:
    """Delete a partner with its capabilities, feedback about it and its institute tokens."""

    def tx(conn):
        if store.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner '{partner_id}'")
        cap_ids = store.delete_partner(conn, partner_id)
        return None, Change(removed_capabilities=cap_ids, removed_partners=[partner_id])

    ctx.live.write(tx)
    return Response(status_code=204)
