"""Who sees and edits what. Every visibility rule of the service lives here.

* admin, staff: every record, every field.
* enterprise: its own demands (`owner` equals the token's enterprise), every field of them;
  partners and capabilities read-only.
* institute: published, non-confidential demands, without contact fields (`contact`, the
  owner account and contact-like `extra` keys); partners and capabilities read-only except
  the capabilities of its own partner.

A demand a caller may not see is reported as missing (404), never as forbidden, so the
existence of a confidential demand does not leak.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import false
from sqlalchemy.sql.elements import ColumnElement

from matcher.retrieval.engine import Filters
from service.auth.tokens import Principal
from service.schemas import DemandOut, DemandPublic, DemandPublicRedacted
from service.storage.db import demands

_CONTACT_KEY = re.compile(r"联系|电话|手机|邮箱|微信|传真|地址|contact|phone|mobile|e-?mail|wechat|fax|address|tel",
                          re.IGNORECASE)


def demand_scope(p: Principal) -> list[ColumnElement]:
    """SQL conditions selecting the demands `p` may see."""
    if p.is_staff:
        return []
    if p.role == "enterprise" and p.enterprise:
        return [demands.c.owner == p.enterprise]
    if p.role == "institute":
        return [demands.c.published.is_(True), demands.c.confidential.is_(False)]
    return [false()]


def can_see_demand(p: Principal, row: dict) -> bool:
    if p.is_staff:
        return True
    if p.role == "enterprise":
        return bool(p.enterprise) and row["owner"] == p.enterprise
    if p.role == "institute":
        return bool(row["published"]) and not row["confidential"]
    return False


def sees_contacts(p: Principal) -> bool:
    """Whether `p` gets the full demand (contact fields included) for demands it can see."""
    return p.is_staff or p.role == "enterprise"


def can_edit_demand(p: Principal, row: dict) -> bool:
    return p.is_staff or (p.role == "enterprise" and bool(p.enterprise) and row["owner"] == p.enterprise)


def can_edit_capabilities_of(p: Principal, partner_id: str) -> bool:
    return p.is_staff or (p.role == "institute" and p.partner_id == partner_id)


def demand_out(p: Principal, row: dict) -> DemandOut:
    """The demand as `p` may see it (call only after `can_see_demand`)."""
    if sees_contacts(p):
        return DemandPublic.model_validate(row)
    fields = {k: row[k] for k in DemandPublicRedacted.model_fields}
    fields["extra"] = {k: v for k, v in (row["extra"] or {}).items() if not _CONTACT_KEY.search(k)}
    return DemandPublicRedacted.model_validate(fields)


def demand_search_filters(p: Principal, *, unpublished: frozenset[str], industry: Sequence[str] = (),
                          region: Sequence[str] = (), language: Sequence[str] = ()) -> Filters:
    """Engine filters for a demand search by `p` (staff: all; institute: public only)."""
    public_only = not p.is_staff
    return Filters(industries=frozenset(industry), regions=frozenset(region), languages=frozenset(language),
                   include_confidential=not public_only,
                   exclude_ids=unpublished if public_only else frozenset())
