"""Feedback on suggestions: what happened when staff followed up a (demand, partner) pair."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from sqlalchemy import and_, bindparam, func, insert, select, true
from sqlalchemy.engine import Connection

from matcher.sheets import safe_text
from service.storage.db import demands, feedback, partners, utcnow

EXPORT_COLUMNS = ("id", "demand_id", "demand_title", "partner_id", "partner_name", "status", "reason", "who",
                  "created_at", "reason_code", "amount", "source")


def _select():
    return (select(feedback, demands.c.title.label("demand_title"), partners.c.name.label("partner_name"))
            .join(demands, demands.c.id == feedback.c.demand_id)
            .join(partners, partners.c.id == feedback.c.partner_id))


def _where(demand_id: str | None, partner_id: str | None, status: str | None):
    where = [true()]
    if demand_id:
        where.append(feedback.c.demand_id == demand_id)
    if partner_id:
        where.append(feedback.c.partner_id == partner_id)
    if status:
        where.append(feedback.c.status == status)
    return and_(*where)


def add(conn: Connection, *, demand_id: str, partner_id: str, status: str, reason: str, who: str,
        reason_code: str = "", amount: float | None = None, source: str = "") -> dict:
    """Append one change to a pair's pipeline (nothing is ever overwritten: the history is the log)."""
    result = conn.execute(insert(feedback).values(demand_id=demand_id, partner_id=partner_id, status=status,
                                                  reason=reason, who=who, created_at=utcnow(),
                                                  reason_code=reason_code, amount=amount, source=source))
    new_id = result.inserted_primary_key[0]
    return dict(conn.execute(_select().where(feedback.c.id == new_id)).one()._mapping)


def page(conn: Connection, *, demand_id: str | None = None, partner_id: str | None = None,
         status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Feedback newest first, with the demand title and partner name."""
    where = _where(demand_id, partner_id, status)
    total = conn.execute(select(func.count()).select_from(feedback).where(where)).scalar_one()
    rows = conn.execute(_select().where(where).order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
                        .limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows], int(total)


_OF_DEMAND = (select(feedback).where(feedback.c.demand_id == bindparam("demand_id"))
              .order_by(feedback.c.created_at, feedback.c.id))  # built once: every stored match reads it


def latest_by_partner(conn: Connection, demand_id: str) -> dict[str, dict]:
    """The newest feedback on each partner suggested for `demand_id` (a rejection that was
    followed by another status no longer counts as the decision)."""
    return {r.partner_id: dict(r._mapping) for r in conn.execute(_OF_DEMAND, {"demand_id": demand_id})}


def all_rows(conn: Connection, *, demand_id: str | None = None) -> list[dict]:
    rows = conn.execute(_select().where(_where(demand_id, None, None)).order_by(feedback.c.id))
    return [dict(r._mapping) for r in rows]


def to_csv(rows: Iterable[dict]) -> str:
    """CSV text (RFC 4180, CRLF) with a header row; formula-like cells neutralised."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(EXPORT_COLUMNS)
    for r in rows:
        out.writerow([safe_text(_cell(r, c)) for c in EXPORT_COLUMNS])
    return buf.getvalue()


def _cell(r: dict, c: str):
    v = r.get(c)
    if c == "created_at":
        return v.isoformat()
    return "" if v is None else v


def add_many(conn: Connection, items: Iterable[dict], *, who: str, source: str) -> int:
    """Append many changes in one statement (the caller's transaction makes it all or nothing)."""
    now = utcnow()
    rows = [{"demand_id": i["demand_id"], "partner_id": i["partner_id"], "status": i["status"],
             "reason": i.get("reason", ""), "reason_code": i.get("reason_code", ""), "amount": i.get("amount"),
             "who": who, "source": source, "created_at": now} for i in items]
    if rows:
        conn.execute(insert(feedback), rows)
    return len(rows)


def all_changes(conn: Connection) -> list[dict]:
    """Every change, oldest first, without joins (for the funnel and for learning)."""
    rows = conn.execute(select(feedback.c.demand_id, feedback.c.partner_id, feedback.c.status,
                               feedback.c.reason_code, feedback.c.amount, feedback.c.created_at)
                        .order_by(feedback.c.created_at, feedback.c.id))
    return [dict(r._mapping) for r in rows]
