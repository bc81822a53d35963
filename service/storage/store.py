"""Reading and writing demands, capabilities and partners (SQLAlchemy Core, parameterised).

Every function takes a `Connection`; writers run inside the caller's transaction, so a bulk
import is one transaction. Rows come back as plain dicts. `*_record` turn rows into the
engine's records.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from matcher.records import Capability, Demand, Partner
from service.storage.db import capabilities, capability_industries, demands, partners, utcnow

Row = dict[str, Any]
CHUNK = 500


# -- records ------------------------------------------------------------------------------
def demand_record(row: Row) -> Demand:
    return Demand(id=row["id"], title=row["title"], text=row["text"], industry=row["industry"],
                  region=row["region"], enterprise=row["enterprise"], contact=row["contact"],
                  confidential=bool(row["confidential"]), date=row["date"], language=row["language"],
                  extra=dict(row["extra"] or {}))


def capability_record(row: Row) -> Capability:
    return Capability(id=row["id"], partner_id=row["partner_id"], title=row["title"], text=row["text"],
                      partner_name=row.get("partner_name") or "", kind=row["kind"],
                      industries=tuple(row["industries"] or ()), language=row["language"],
                      extra=dict(row["extra"] or {}))


def partner_record(row: Row) -> Partner:
    return Partner(id=row["id"], name=row["name"], type=row["type"], region=row["region"],
                   country=row["country"], extra=dict(row["extra"] or {}))


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ordered_id(prefix: str) -> str:
    """A new id that sorts after every id made before it (microseconds since the epoch, in fixed
    width hex, then randomness): lists ordered by a second-resolution time and then the id stay
    in creation order when two are made within one second."""
    global _last_micros
    with _ordered_lock:  # strictly increasing within a process, even within one microsecond
        _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
        micros = _last_micros
    return f"{prefix}-{micros:014x}{uuid.uuid4().hex[:6]}"


_ordered_lock = threading.Lock()
_last_micros = 0


def like(q: str) -> str:
    """A LIKE pattern matching `q` anywhere, with LIKE's wildcards escaped (escape char '\\')."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _page(conn: Connection, stmt, where: list[ColumnElement], order, limit: int, offset: int,
          ) -> tuple[list[Row], int]:
    clause = and_(true(), *where)
    total = conn.execute(select(func.count()).select_from(stmt.where(clause).subquery())).scalar_one()
    rows = conn.execute(stmt.where(clause).order_by(*order).limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows], int(total)


# -- demands ------------------------------------------------------------------------------
# Reads every match request makes are statements built once, with bound parameters: building
# one anew for each call (and SQLAlchemy keying its compiled form again) cost more than
# SQLite's answer, 0.082 against 0.031 ms for a demand by id and 0.59 against 0.21 ms for what a
# match list shows (docs/performance.md, session 18).
def _by_id(stmt, id_column):
    return stmt.where(id_column == bindparam("id"))


def _by_ids(stmt, id_column):
    return stmt.where(id_column.in_(bindparam("ids", expanding=True)))


_DEMAND_BY_ID = _by_id(select(demands), demands.c.id)
_DEMANDS_BY_IDS = _by_ids(select(demands), demands.c.id)


def get_demand(conn: Connection, demand_id: str) -> Row | None:
    row = conn.execute(_DEMAND_BY_ID, {"id": demand_id}).first()
    return dict(row._mapping) if row else None


def _rows_by_id(conn: Connection, stmt, ids: Sequence[str]) -> dict[str, Row]:
    """Rows of `stmt` (`_by_ids`) whose id is in `ids`, queried CHUNK ids at a time."""
    out: dict[str, Row] = {}
    for start in range(0, len(ids), CHUNK):
        for r in conn.execute(stmt, {"ids": list(ids[start:start + CHUNK])}):
            out[r.id] = dict(r._mapping)
    return out


def get_demands(conn: Connection, ids: Sequence[str]) -> dict[str, Row]:
    return _rows_by_id(conn, _DEMANDS_BY_IDS, ids)


def demand_filters(*, industry: Sequence[str] = (), region: Sequence[str] = (),
                   language: Sequence[str] = (), q: str | None = None,
                   published: bool | None = None, confidential: bool | None = None,
                   enterprise: str | None = None) -> list[ColumnElement]:
    where: list[ColumnElement] = []
    if industry:
        where.append(demands.c.industry.in_(list(industry)))
    if region:
        where.append(demands.c.region.in_(list(region)))
    if language:
        where.append(demands.c.language.in_(list(language)))
    if q:
        pattern = like(q.strip())
        where.append(or_(demands.c.title.ilike(pattern, escape="\\"), demands.c.text.ilike(pattern, escape="\\"),
                         demands.c.id.ilike(pattern, escape="\\")))
    if published is not None:
        where.append(demands.c.published == published)
    if confidential is not None:
        where.append(demands.c.confidential == confidential)
    if enterprise:
        where.append(demands.c.enterprise == enterprise)
    return where


def list_demands(conn: Connection, where: list[ColumnElement], *, limit: int, offset: int,
                 ) -> tuple[list[Row], int]:
    return _page(conn, select(demands), where, (demands.c.date.desc(), demands.c.id), limit, offset)


def demand_facets(conn: Connection, where: list[ColumnElement]) -> dict[str, list[str]]:
    """Distinct industries and regions among the demands `where` selects (for filter menus)."""
    out = {}
    for name in ("industry", "region"):
        col = demands.c[name]
        rows = conn.execute(select(col).where(and_(true(), *where), col != "").distinct().order_by(col))
        out[name] = [r[0] for r in rows]
    return out


def unpublished_demand_ids(conn: Connection) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute(select(demands.c.id).where(demands.c.published.is_(False))))


def insert_demand(conn: Connection, values: Row) -> Row:
    now = utcnow()
    row = {**values, "created_at": now, "updated_at": now}
    conn.execute(insert(demands).values(**row))
    return get_demand(conn, row["id"])  # type: ignore[return-value]


def update_demand(conn: Connection, demand_id: str, values: Row) -> Row:
    conn.execute(update(demands).where(demands.c.id == demand_id).values(**values, updated_at=utcnow()))
    return get_demand(conn, demand_id)  # type: ignore[return-value]


def delete_demand(conn: Connection, demand_id: str) -> bool:
    return conn.execute(delete(demands).where(demands.c.id == demand_id)).rowcount > 0


def demand_values(d: Demand, *, owner: str, published: bool) -> Row:
    return {"id": d.id, "title": d.title, "text": d.text, "industry": d.industry, "region": d.region,
            "enterprise": d.enterprise, "contact": d.contact, "confidential": bool(d.confidential),
            "date": d.date, "language": d.language, "extra": dict(d.extra), "owner": owner,
            "published": published}


# -- partners -----------------------------------------------------------------------------
def _partner_select():
    count = (select(func.count()).where(capabilities.c.partner_id == partners.c.id)
             .correlate(partners).scalar_subquery())
    return select(partners, count.label("capabilities"))


def get_partner(conn: Connection, partner_id: str) -> Row | None:
    row = conn.execute(_partner_select().where(partners.c.id == partner_id)).first()
    return dict(row._mapping) if row else None


_PARTNERS_BY_IDS = _by_ids(select(partners), partners.c.id)


def get_partners(conn: Connection, ids: Sequence[str]) -> dict[str, Row]:
    return _rows_by_id(conn, _PARTNERS_BY_IDS, ids)


def list_partners(conn: Connection, *, partner_type: Sequence[str] = (), region: Sequence[str] = (),
                  q: str | None = None, limit: int, offset: int) -> tuple[list[Row], int]:
    where: list[ColumnElement] = []
    if partner_type:
        where.append(partners.c.type.in_(list(partner_type)))
    if region:
        where.append(partners.c.region.in_(list(region)))
    if q:
        pattern = like(q.strip())
        where.append(or_(partners.c.name.ilike(pattern, escape="\\"), partners.c.id.ilike(pattern, escape="\\")))
    return _page(conn, _partner_select(), where, (partners.c.id,), limit, offset)


def insert_partner(conn: Connection, values: Row) -> Row:
    now = utcnow()
    conn.execute(insert(partners).values(**values, created_at=now, updated_at=now))
    return get_partner(conn, values["id"])  # type: ignore[return-value]


def update_partner(conn: Connection, partner_id: str, values: Row) -> Row:
    conn.execute(update(partners).where(partners.c.id == partner_id).values(**values, updated_at=utcnow()))
    return get_partner(conn, partner_id)  # type: ignore[return-value]


def delete_partner(conn: Connection, partner_id: str) -> list[str]:
    """Deletes the partner (its capabilities, feedback and tokens cascade); returns the
    ids of the capabilities that went with it."""
    cap_ids = [r[0] for r in conn.execute(select(capabilities.c.id).where(capabilities.c.partner_id == partner_id))]
    # Explicit deletes as well as ON DELETE CASCADE, for databases where it is not enforced.
    conn.execute(delete(capabilities).where(capabilities.c.partner_id == partner_id))
    conn.execute(delete(partners).where(partners.c.id == partner_id))
    return cap_ids


def partner_values(p: Partner) -> Row:
    return {"id": p.id, "name": p.name, "type": p.type, "region": p.region, "country": p.country,
            "extra": dict(p.extra)}


# -- capabilities -------------------------------------------------------------------------
def _capability_select():
    return select(capabilities, partners.c.name.label("partner_name")).join(
        partners, partners.c.id == capabilities.c.partner_id)


def get_capability(conn: Connection, capability_id: str) -> Row | None:
    row = conn.execute(_capability_select().where(capabilities.c.id == capability_id)).first()
    return dict(row._mapping) if row else None


_CAPABILITIES_BY_IDS = _by_ids(_capability_select(), capabilities.c.id)
_SHOWN_BY_IDS = _by_ids(
    select(capabilities.c.id, capabilities.c.title, capabilities.c.partner_id, partners.c.name.label("partner_name"),
           partners.c.type.label("partner_type"), partners.c.region.label("partner_region")).join(
        partners, partners.c.id == capabilities.c.partner_id),
    capabilities.c.id)


def get_capabilities(conn: Connection, ids: Sequence[str]) -> dict[str, Row]:
    return _rows_by_id(conn, _CAPABILITIES_BY_IDS, ids)


def shown_capabilities(conn: Connection, ids: Sequence[str]) -> dict[str, Row]:
    """What a match list shows of the capabilities in `ids` that exist, with their partner:
    id, title, partner_id, partner_name, partner_type, partner_region. One query of the columns
    shown (reading whole capability and partner rows, `extra` decoded, cost a stored-demand
    match most of a millisecond)."""
    return _rows_by_id(conn, _SHOWN_BY_IDS, ids)


def list_capabilities(conn: Connection, *, partner_id: Sequence[str] = (), industry: Sequence[str] = (),
                      region: Sequence[str] = (), partner_type: Sequence[str] = (),
                      language: Sequence[str] = (), q: str | None = None, limit: int, offset: int,
                      ) -> tuple[list[Row], int]:
    where: list[ColumnElement] = []
    if partner_id:
        where.append(capabilities.c.partner_id.in_(list(partner_id)))
    if industry:
        where.append(exists().where(capability_industries.c.capability_id == capabilities.c.id,
                                    capability_industries.c.industry.in_(list(industry))))
    if region:
        where.append(partners.c.region.in_(list(region)))
    if partner_type:
        where.append(partners.c.type.in_(list(partner_type)))
    if language:
        where.append(capabilities.c.language.in_(list(language)))
    if q:
        pattern = like(q.strip())
        where.append(or_(capabilities.c.title.ilike(pattern, escape="\\"),
                         capabilities.c.text.ilike(pattern, escape="\\"),
                         capabilities.c.id.ilike(pattern, escape="\\")))
    return _page(conn, _capability_select(), where, (capabilities.c.id,), limit, offset)


def _set_industries(conn: Connection, rows: Iterable[Row]) -> None:
    rows = list(rows)
    ids = [r["id"] for r in rows]
    for start in range(0, len(ids), CHUNK):
        conn.execute(delete(capability_industries).where(
            capability_industries.c.capability_id.in_(ids[start:start + CHUNK])))
    links = [{"capability_id": r["id"], "industry": tag} for r in rows for tag in dict.fromkeys(r["industries"])]
    if links:
        conn.execute(insert(capability_industries), links)


def insert_capability(conn: Connection, values: Row) -> Row:
    now = utcnow()
    conn.execute(insert(capabilities).values(**values, created_at=now, updated_at=now))
    _set_industries(conn, [values])
    return get_capability(conn, values["id"])  # type: ignore[return-value]


def update_capability(conn: Connection, capability_id: str, values: Row) -> Row:
    conn.execute(update(capabilities).where(capabilities.c.id == capability_id)
                 .values(**values, updated_at=utcnow()))
    if "industries" in values:
        _set_industries(conn, [{"id": capability_id, "industries": values["industries"]}])
    return get_capability(conn, capability_id)  # type: ignore[return-value]


def delete_capability(conn: Connection, capability_id: str) -> bool:
    conn.execute(delete(capability_industries).where(capability_industries.c.capability_id == capability_id))
    return conn.execute(delete(capabilities).where(capabilities.c.id == capability_id)).rowcount > 0


def capability_values(c: Capability) -> Row:
    return {"id": c.id, "partner_id": c.partner_id, "title": c.title, "text": c.text, "kind": c.kind,
            "industries": list(c.industries), "language": c.language, "extra": dict(c.extra)}


# -- bulk ---------------------------------------------------------------------------------
def existing_ids(conn: Connection, table, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        stmt = select(table.c.id).where(table.c.id.in_(list(ids[start:start + CHUNK])))
        found.update(r[0] for r in conn.execute(stmt))
    return found


def upsert_rows(conn: Connection, table, rows: Sequence[Row]) -> tuple[int, int]:
    """Insert new ids, replace existing ones (keeping created_at). Returns (created, updated)."""
    if not rows:
        return 0, 0
    have = existing_ids(conn, table, [r["id"] for r in rows])
    now = utcnow()
    new = [{**r, "created_at": now, "updated_at": now} for r in rows if r["id"] not in have]
    old = [{**{f"b_{k}": v for k, v in r.items()}, "b_updated_at": now} for r in rows if r["id"] in have]
    if new:
        conn.execute(insert(table), new)
    if old:
        cols = [k for k in rows[0] if k != "id"] + ["updated_at"]
        stmt = (update(table).where(table.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in cols}))
        conn.execute(stmt, old)
    if table is capabilities:
        _set_industries(conn, rows)
    return len(new), len(old)


def all_records(conn: Connection) -> tuple[list[Capability], list[Demand], list[Partner]]:
    """Everything the engine indexes, read in one go (for a rebuild)."""
    part = [partner_record(dict(r._mapping)) for r in conn.execute(select(partners).order_by(partners.c.id))]
    caps = [capability_record(dict(r._mapping))
            for r in conn.execute(_capability_select().order_by(capabilities.c.id))]
    dems = [demand_record(dict(r._mapping)) for r in conn.execute(select(demands).order_by(demands.c.id))]
    return caps, dems, part


def counts(conn: Connection) -> dict[str, int]:
    return {name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for name, t in (("demands", demands), ("capabilities", capabilities), ("partners", partners))}


def unpublished_demands(conn: Connection, *, limit: int = 500) -> list[Row]:
    """Unpublished demands, the most recently changed first (the review queue)."""
    rows = conn.execute(select(demands).where(demands.c.published.is_(False))
                        .order_by(demands.c.updated_at.desc(), demands.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def recently_changed_demands(conn: Connection, *, limit: int = 20) -> list[Row]:
    rows = conn.execute(select(demands).where(demands.c.published.is_(True))
                        .order_by(demands.c.updated_at.desc(), demands.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]
