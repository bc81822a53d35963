"""Capabilities: every role reads; staff edit all, an institute only its own partner's."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.auth import policy
from service.auth.tokens import Principal
from service.deps import CtxDep, FilterList, PagingDep, PrincipalDep, SearchQuery, StaffOrInstituteDep
from service.errors import Conflict, Forbidden, Invalid, NotFound
from service.jobs.live import Change
from service.schemas import CapabilityCreate, CapabilityPublic, CapabilityUpdate, IdStr, Page
from service.storage import store

router = APIRouter(prefix="/api/capabilities", tags=["capabilities"])


def _check_owner(principal: Principal, partner_id: str) -> None:
    if not policy.can_edit_capabilities_of(principal, partner_id):
        raise Forbidden("an institute edits only its own partner's capabilities")


@router.get("", response_model=Page[CapabilityPublic])
def list_capabilities(ctx: CtxDep, principal: PrincipalDep, paging: PagingDep, partner_id: FilterList = None,
                      industry: FilterList = None, region: FilterList = None, partner_type: FilterList = None,
                      language: FilterList = None, q: SearchQuery = None) -> Page:
    """Capabilities; `region` and `partner_type` are the partner's, `q` matches id, title, text."""
    with ctx.db.connect() as conn:
        rows, total = store.list_capabilities(
            conn, partner_id=partner_id or (), industry=industry or (), region=region or (),
            partner_type=partner_type or (), language=language or (), q=q, limit=paging.limit,
            offset=paging.offset)
    return Page(items=[policy.capability_out(principal, r) for r in rows], total=total, limit=paging.limit,
                offset=paging.offset)


@router.post("", status_code=201, response_model=CapabilityPublic)
def create_capability(ctx: CtxDep, principal: StaffOrInstituteDep, body: CapabilityCreate) -> CapabilityPublic:
    partner_id = body.partner_id or (principal.partner_id if principal.role == "institute" else None)
    if not partner_id:
        # required of staff only (an institute's defaults to its own): a rule of the caller's role,
        # which the request schema cannot state (docs/reliability.md)
        raise Invalid("partner_id is required", code="partner_id_required",
                      details=[{"loc": ["body", "partner_id"], "message": "required"}])
    _check_owner(principal, partner_id)
    cap_id = body.id or store.new_id("C")

    def tx(conn):
        if store.get_partner(conn, partner_id) is None:
            # a reference the stored state lacks: a conflict, not a malformed request
            raise Conflict(f"no partner '{partner_id}'", code="unknown_partner",
                           details=[{"loc": ["body", "partner_id"], "message": "unknown partner"}])
        if store.get_capability(conn, cap_id) is not None:
            raise Conflict(f"capability '{cap_id}' already exists")
        row = store.insert_capability(conn, {**body.model_dump(exclude={"id", "partner_id"}),
                                             "id": cap_id, "partner_id": partner_id})
        return row, Change(capabilities=[store.capability_record(row)])

    return policy.capability_out(principal, ctx.live.write(tx))


@router.get("/{capability_id}", response_model=CapabilityPublic)
def get_capability(ctx: CtxDep, principal: PrincipalDep, capability_id: IdStr) -> CapabilityPublic:
    with ctx.db.connect() as conn:
        row = store.get_capability(conn, capability_id)
    if row is None:
        raise NotFound(f"no capability '{capability_id}'")
    return policy.capability_out(principal, row)


@router.patch("/{capability_id}", response_model=CapabilityPublic)
def update_capability(ctx: CtxDep, principal: StaffOrInstituteDep, capability_id: IdStr,
                      body: CapabilityUpdate) -> CapabilityPublic:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)

    def tx(conn):
        row = store.get_capability(conn, capability_id)
        if row is None:
            raise NotFound(f"no capability '{capability_id}'")
        _check_owner(principal, row["partner_id"])
        if "partner_id" in changes:
            _check_owner(principal, changes["partner_id"])
            if store.get_partner(conn, changes["partner_id"]) is None:
                raise Conflict(f"no partner '{changes['partner_id']}'", code="unknown_partner",
                               details=[{"loc": ["body", "partner_id"], "message": "unknown partner"}])
        merged = {**row, **changes}
        if not merged["title"].strip() and not merged["text"].strip():  # the other one is stored empty
            raise Conflict("a capability needs a title or a text; the stored one has no other", code="needs_text")
        row = store.update_capability(conn, capability_id, changes) if changes else row
        return row, Change(capabilities=[store.capability_record(row)])

    return policy.capability_out(principal, ctx.live.write(tx))


@router.delete("/{capability_id}", status_code=204, response_class=Response)
def delete_capability(ctx: CtxDep, principal: StaffOrInstituteDep, capability_id: IdStr) -> Response:
    def tx(conn):
        row = store.get_capability(conn, capability_id)
        if row is None:
            raise NotFound(f"no capability '{capability_id}'")
        _check_owner(principal, row["partner_id"])
        store.delete_capability(conn, capability_id)
        return None, Change(removed_capabilities=[capability_id])

    ctx.live.write(tx)
    return Response(status_code=204)
