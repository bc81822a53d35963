"""Liveness, readiness and the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import CtxDep, PrincipalDep
from service.errors import NotReady
from service.schemas import Health, Me, Ready
from service.storage import store

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"description": "not ready"}})
def readyz(ctx: CtxDep) -> Ready:
    """Ready when the database answers and the index is loaded and, once brought forward, holds
    every write committed before the check (another process's included)."""
    if ctx.live.engine is None:
        raise NotReady(f"the index could not be built: {ctx.live.error}" if ctx.live.error
                       else "the index is still loading")
    try:
        db_rev = ctx.live.bring_forward()
        with ctx.db.connect() as conn:
            counts = store.counts(conn)
    except NotReady:
        raise
    except Exception as exc:
        raise NotReady(f"database unreachable: {type(exc).__name__}") from None
    if ctx.live.revision < db_rev:
        raise NotReady(f"the index (revision {ctx.live.revision}) is behind the database (revision {db_rev})")
    return Ready(status="ready", revision=db_rev, index_revision=ctx.live.revision, model=ctx.live.encoder.name,
                 **counts)


@router.get("/api/me", response_model=Me, tags=["tokens"])
def me(principal: PrincipalDep) -> Me:
    """Who the presented token belongs to."""
    return Me(role=principal.role, name=principal.name, partner_id=principal.partner_id,
              enterprise=principal.enterprise)
