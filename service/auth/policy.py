"""Who sees and edits what. Every visibility rule of the service lives here.

* admin, staff: every record, every field.
* enterprise: its own demands (`owner` equals the token's enterprise), every field of them;
  partners and capabilities read-only.
* institute: published, non-confidential demands, without contact fields (`contact`, the
  owner account); partners and capabilities read-only except the capabilities of its own partner.
* `extra` (spreadsheet columns beyond the known fields, which may hold a QQ number, a mobile or a
  contact person under any name): an allow-list. Institutes and enterprises see only the fields
  the bureau made public (`TECHMATCH_PUBLIC_EXTRA_FIELDS`), except on their own records.

A demand a caller may not see is reported as missing (404), never as forbidden, so the
existence of a confidential demand does not leak.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import false
from sqlalchemy.sql.elements import ColumnElement

from matcher.retrieval.engine import Filters
from service.auth.tokens import Principal
from service.schemas import CapabilityPublic, DemandOut, DemandPublic, DemandPublicRedacted, PartnerPublic
from service.storage.db import demands


def visible_extra(p: Principal, extra: dict | None, *, own: bool = False) -> dict[str, str]:
    """The `extra` fields `p` may see: all for staff and on its own records, else the public ones."""
    extra = extra or {}
    if p.is_staff or own:
        return dict(extra)
    return {k: v for k, v in extra.items() if k in p.public_extra}


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
        return DemandPublic.model_validate(row)  # staff, or the owning enterprise: its own record
    fields = {k: row[k] for k in DemandPublicRedacted.model_fields}
    fields["extra"] = visible_extra(p, row["extra"])
    return DemandPublicRedacted.model_validate(fields)


def partner_out(p: Principal, row: dict) -> PartnerPublic:
    own = p.role == "institute" and p.partner_id == row["id"]
    return PartnerPublic.model_validate({**row, "extra": visible_extra(p, row.get("extra"), own=own)})


def capability_out(p: Principal, row: dict) -> CapabilityPublic:
    own = p.role == "institute" and p.partner_id == row["partner_id"]
    return CapabilityPublic.model_validate({**row, "extra": visible_extra(p, row.get("extra"), own=own)})


def demand_search_filters(p: Principal, *, unpublished: frozenset[str], industry: Sequence[str] = (),
                          region: Sequence[str] = (), language: Sequence[str] = ()) -> Filters:
    """Engine filters for a demand search by `p` (staff: all; institute: public only)."""
    public_only = not p.is_staff
    return Filters(industries=frozenset(industry), regions=frozenset(region), languages=frozenset(language),
                   include_confidential=not public_only,
                   exclude_ids=unpublished if public_only else frozenset())
