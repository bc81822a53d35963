"""The change history of demands (table `demand_changes`): written in the same transaction as
the change itself, read newest first for the demand page and the review queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from service.storage.db import demand_changes, utcnow

# Fields whose edits are recorded, in the order a page shows them.
TRACKED = ("title", "text", "industry", "region", "enterprise", "contact", "confidential", "published", "owner",
           "date", "language")
ACTIONS = ("created", "edited", "published", "unpublished", "returned", "resubmitted", "merged_into",
           "merged_from", "deleted")


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the tracked fields (and `extra` keys) that differ."""
    out: dict[str, list[Any]] = {}
    for key in TRACKED:
        if key in after and before.get(key) != after.get(key):
            out[key] = [before.get(key), after.get(key)]
    old_extra, new_extra = dict(before.get("extra") or {}), dict(after.get("extra") or {})
    if "extra" in after:
        for key in sorted(set(old_extra) | set(new_extra)):
            if old_extra.get(key) != new_extra.get(key):
                out[f"extra.{key}"] = [old_extra.get(key), new_extra.get(key)]
    return out


def record(conn: Connection, demand_id: str, action: str, *, who: str, role: str = "",
           changes: Mapping[str, Any] | None = None, note: str = "") -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown change action '{action}'")
    conn.execute(insert(demand_changes).values(demand_id=demand_id, action=action, who=who, role=role, at=utcnow(),
                                               changes=dict(changes or {}), note=note))


def history(conn: Connection, demand_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    rows = conn.execute(select(demand_changes).where(demand_changes.c.demand_id == demand_id)
                        .order_by(demand_changes.c.at.desc(), demand_changes.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def submissions(conn: Connection, demand_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest 'created' or 'resubmitted' change of each demand: who submitted it and when."""
    if not demand_ids:
        return {}
    latest = (select(demand_changes.c.demand_id, func.max(demand_changes.c.id).label("id"))
              .where(demand_changes.c.demand_id.in_(list(demand_ids)),
                     demand_changes.c.action.in_(("created", "resubmitted")))
              .group_by(demand_changes.c.demand_id).subquery())
    rows = conn.execute(select(demand_changes).join(latest, latest.c.id == demand_changes.c.id))
    return {r.demand_id: dict(r._mapping) for r in rows}
