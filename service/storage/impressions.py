"""Impressions: every match list served, kept so outcomes can be learned from without position bias.

Serving a list only appends it to an in-memory buffer (a lock and a list append, microseconds);
a writer thread inserts the buffer in batches (two executemany statements per flush) every
`flush_seconds`, or at once when it holds `max_buffer` lists. List ids are made here (uuid4) so
child rows need no round trip. `close()` flushes what is left; a crash loses at most the last
`flush_seconds` of impressions, never a pipeline change (those are written synchronously).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from service.storage.db import impression_lists, impressions, utcnow

log = logging.getLogger("techmatch.impressions")


@dataclass(frozen=True)
class Shown:
    """One partner as shown: its rank, score and score components."""

    rank: int
    partner_id: str
    score: float
    components: dict


class ImpressionLog:
    def __init__(self, db: Engine, *, flush_seconds: float = 1.0, max_buffer: int = 200,
                 retention_days: int = 365) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self.max_buffer = max_buffer
        self.retention_days = retention_days
        self._lists: list[dict] = []
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune: dt.datetime | None = None

    # -- recording ----------------------------------------------------------------------------
    def record(self, *, source: str, who: str, demand_id: str | None, text: str | None, shown: Sequence[Shown],
               engine: str, model_version: str, revision: int, k: int) -> str:
        """Buffer one served list; returns its id."""
        list_id = uuid.uuid4().hex
        head = {"id": list_id, "served_at": utcnow(), "source": source, "who": who, "demand_id": demand_id,
                "query_hash": hashlib.sha256(text.encode("utf-8")).hexdigest() if text else "",
                "engine": engine[:200], "model_version": model_version, "revision": revision, "k": k}
        rows = [{"list_id": list_id, "rank": s.rank, "partner_id": s.partner_id, "score": float(s.score),
                 "components": {key: float(v) for key, v in s.components.items()}} for s in shown]
        with self._lock:
            self._lists.append(head)
            self._rows.extend(rows)
            full = len(self._lists) >= self.max_buffer
        if full:
            self._wake.set()
        return list_id

    def flush(self) -> int:
        """Write what is buffered now; returns the number of lists written."""
        with self._lock:
            lists, rows = self._lists, self._rows
            self._lists, self._rows = [], []
        if not lists:
            return 0
        try:
            with self.db.begin() as conn:
                conn.execute(insert(impression_lists), lists)
                if rows:
                    conn.execute(insert(impressions), rows)
        except Exception:  # the log must never break serving; keep the rows for the next try
            log.exception("impressions: flush failed, will retry")
            with self._lock:
                self._lists[:0], self._rows[:0] = lists, rows
            return 0
        return len(lists)

    def prune(self, now: dt.datetime | None = None) -> int:
        """Delete lists older than the retention; returns how many. 0 days keeps everything."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or utcnow()) - dt.timedelta(days=self.retention_days)
        with self.db.begin() as conn:
            old = select(impression_lists.c.id).where(impression_lists.c.served_at < cutoff)
            conn.execute(delete(impressions).where(impressions.c.list_id.in_(old)))
            n = conn.execute(delete(impression_lists).where(impression_lists.c.served_at < cutoff)).rowcount
        self._last_prune = now or utcnow()
        return int(n or 0)

    # -- the writer thread ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()
            if self._last_prune is None or utcnow() - self._last_prune > dt.timedelta(hours=6):
                try:
                    self.prune()
                except Exception:  # pragma: no cover - logged, retried later
                    log.exception("impressions: prune failed")


def count(conn: Connection) -> tuple[int, int]:
    """(lists, rows) stored."""
    return (int(conn.execute(select(func.count()).select_from(impression_lists)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(impressions)).scalar_one()))


def shown_lists(conn: Connection, *, limit: int = 200_000) -> list[dict]:
    """Stored-demand lists with their rows: [{"id", "demand_id", "served_at", "rows": [(rank, partner_id)]}],
    oldest first (what learning from outcomes reads)."""
    heads = conn.execute(select(impression_lists.c.id, impression_lists.c.demand_id, impression_lists.c.served_at)
                         .where(impression_lists.c.demand_id.is_not(None))
                         .order_by(impression_lists.c.served_at).limit(limit)).all()
    by_id = {h.id: {"id": h.id, "demand_id": h.demand_id, "served_at": h.served_at, "rows": []} for h in heads}
    if by_id:
        for r in conn.execute(select(impressions.c.list_id, impressions.c.rank, impressions.c.partner_id)
                              .order_by(impressions.c.list_id, impressions.c.rank)):
            if r.list_id in by_id:
                by_id[r.list_id]["rows"].append((r.rank, r.partner_id))
    return list(by_id.values())
