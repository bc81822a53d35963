"""API tokens (admin only): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.auth import tokens as auth
from service.deps import AdminDep, CtxDep
from service.errors import Conflict, NotFound
from service.jobs.live import Change
from service.schemas import IdStr, TokenCreate, TokenCreated, TokenPublic
from service.storage import store

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.get("", response_model=list[TokenPublic])
def list_tokens(ctx: CtxDep, principal: AdminDep) -> list[TokenPublic]:
    with ctx.db.connect() as conn:
        return [TokenPublic.model_validate(r) for r in auth.list_tokens(conn)]


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(ctx: CtxDep, principal: AdminDep, body: TokenCreate) -> TokenCreated:
    """A new token for a role; institute tokens name a partner, enterprise tokens an enterprise."""

    def tx(conn):
        if body.partner_id and store.get_partner(conn, body.partner_id) is None:
            raise Conflict(f"no partner '{body.partner_id}'", code="unknown_partner",  # not stored: a conflict
                           details=[{"loc": ["body", "partner_id"], "message": "unknown partner"}])
        row, secret = auth.create_token(conn, name=body.name, role=body.role, partner_id=body.partner_id,
                                        enterprise=body.enterprise, expires_in_days=body.expires_in_days)
        return TokenCreated(**{k: v for k, v in row.items() if k != "token_hash"}, token=secret), Change()

    return ctx.live.write(tx)


@router.delete("/{token_id}", status_code=204, response_class=Response)
def revoke_token(ctx: CtxDep, principal: AdminDep, token_id: IdStr) -> Response:
    def tx(conn):
        if not auth.delete_token(conn, token_id):
            raise NotFound(f"no token '{token_id}'")
        return None, Change()

    ctx.live.write(tx)
    return Response(status_code=204)
