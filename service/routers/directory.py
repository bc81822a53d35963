"""Partner and capability pages: a partner's profile, its capabilities in full, its contacts
(staff only) and its meeting and feedback history (staff, and the partner's own institute); a
capability's full text. Every capability title on a match list links here."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from service.auth import policy
from service.deps import CtxDep
from service.errors import NotFound
from service.routers.pages import PageUser
from service.schemas import FEEDBACK_STATUSES
from service.storage import feedback, store
from service.storage.db import tokens
from service.views.render import render

router = APIRouter(include_in_schema=False)
MEETING_STATUSES = ("meeting_held", "accepted")


# Which of the visible extra fields the page lists under "contacts" (staff only); what a role may
# see at all is `policy.visible_extra`'s allow-list.
_CONTACT_KEY = re.compile(r"联系|电话|手机|邮箱|微信|传真|地址|contact|phone|mobile|e-?mail|wechat|fax|address|tel",
                          re.IGNORECASE)


def _contacts(principal, extra: dict | None) -> tuple[dict, dict]:
    """(other fields, contact fields) of the `extra` fields `principal` may see; contacts only for staff."""
    seen = policy.visible_extra(principal, extra)
    public = {k: v for k, v in seen.items() if not _CONTACT_KEY.search(k) and v not in ("", None)}
    contacts = {k: v for k, v in seen.items() if _CONTACT_KEY.search(k) and v} if principal.is_staff else {}
    return public, contacts


@router.get("/partners/{partner_id}")
def partner_page(request: Request, ctx: CtxDep, principal: PageUser, partner_id: str) -> Response:
    with ctx.db.connect() as conn:
        partner = store.get_partner(conn, partner_id)
        if partner is None:
            raise NotFound(f"no partner '{partner_id}'", key="err_no_partner", params={"id": partner_id})
        caps, _ = store.list_capabilities(conn, partner_id=[partner_id], limit=1000, offset=0)
        sees_history = principal.is_staff or principal.partner_id == partner_id
        history = feedback.page(conn, partner_id=partner_id, limit=500)[0] if sees_history else None
        accounts = ([dict(r._mapping) for r in conn.execute(
            select(tokens.c.name, tokens.c.role, tokens.c.created_at, tokens.c.expires_at)
            .where(tokens.c.partner_id == partner_id).order_by(tokens.c.created_at))]
            if principal.is_staff else None)
    public, contacts = _contacts(principal, partner["extra"])
    cap_contacts = {}
    for cap in caps:
        cap["public_extra"], found = _contacts(principal, cap["extra"])
        if found:
            cap_contacts[cap["title"] or cap["id"]] = found
    meetings = [h for h in history or [] if h["status"] in MEETING_STATUSES]
    return render(request, "partner.html", {
        "p": partner, "public": public, "contacts": contacts, "cap_contacts": cap_contacts, "caps": caps,
        "history": history, "meetings": meetings, "accounts": accounts, "statuses": FEEDBACK_STATUSES,
    }, principal=principal)


@router.get("/capabilities/{capability_id}")
def capability_page(request: Request, ctx: CtxDep, principal: PageUser, capability_id: str) -> Response:
    with ctx.db.connect() as conn:
        cap = store.get_capability(conn, capability_id)
    if cap is None:
        raise NotFound(f"no capability '{capability_id}'", key="err_no_capability", params={"id": capability_id})
    public, contacts = _contacts(principal, cap["extra"])
    return render(request, "capability.html", {"c": cap, "public": public, "contacts": contacts},
                  principal=principal)
