"""The live index: one `MatchEngine` kept in step with the database, in every process.

The database is the source of truth. The engine is derived: built from the database at
start-up, or loaded from `folder` when the save is of this database (its `database_id`) and
not ahead of it, then brought forward. Every write runs as::

    write lock -> DB transaction (change + revision bump + change-log rows) -> commit -> engine

Every process on the database (workers of one server, several servers) keeps its own engine.
Before each read it compares its revision with the database's (one indexed query); when behind,
it replays the change log past its revision: the records each write touched are read back from
the database and upserted or removed. So a read never answers from an engine missing a write
committed before the read began, whichever process made it: the delay is zero, not a period.
A gap in the log (a write that bypassed it, a log pruned past this engine's revision, a
database reset) makes the process rebuild from the database instead.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.engine import Connection

from matcher.records import Capability, Demand, Partner
from matcher.retrieval.engine import EngineParams, MatchEngine
from matcher.retrieval.index import IndexParams
from service.errors import NotReady
from service.jobs.answers import AnswerCache, question_key
from service.storage import store
from service.storage.db import bump_revision, change_log, database_id, revision

log = logging.getLogger("techmatch.service.live")
# Change-log rows kept (by revision); older ones are pruned now and then by a write.
LOG_KEEP_REVISIONS = 100_000
ANSWER_CACHE_BYTES = 16 * 2**20  # engine answers kept per process (`answers`; Settings.answer_cache_mb)
_KINDS = ("demand", "capability", "partner")
T = TypeVar("T")


@dataclass
class Change:
    """What a write did to the records, for the engine to follow."""

    partners: list[Partner] = field(default_factory=list)
    capabilities: list[Capability] = field(default_factory=list)
    demands: list[Demand] = field(default_factory=list)
    removed_partners: list[str] = field(default_factory=list)
    removed_capabilities: list[str] = field(default_factory=list)
    removed_demands: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        """True when the write touched no record (feedback, tokens...): the engine stays as it is."""
        return not any(vars(self).values())


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`). Memory that
    Python and numpy free is kept by malloc for reuse, spread over the threads' arenas, and
    counts as the process's own; after a start-up or a rebuild most of it is not needed
    again soon. A no-op where the C library has no such call."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def open_service_encoder(settings):
    """The model a service process encodes with, behind the embedding cache, in batches of
    `settings.encode_batch` texts (smaller than a batch run's: see `Settings.encode_batch`)."""
    from matcher.retrieval.encoders import open_encoder

    return open_encoder(settings.model, batch_size=settings.encode_batch)


MALLOC_ARENAS = 2  # glibc's default is 8 a core; the MALLOC_ARENA_MAX variable overrides this


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Let glibc's malloc keep at most `arenas` arenas for the threads created from now on,
    unless MALLOC_ARENA_MAX says otherwise. Each request thread otherwise gets an arena of its
    own and keeps what it freed there: at 42k capabilities with e5 and 8 clients the peak was
    1,701 MB with the default, 1,536 MB with two (docs/performance.md, session 8)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-8, arenas)  # M_ARENA_MAX


class RWLock:
    """Many readers or one writer; a waiting writer goes before new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class LiveIndex:
    """Holds the engine; `read()` for matching (`answer` for an answer kept until the index
    changes), `write(fn)` for every database change."""

    def __init__(self, db: Engine, encoder, folder: str | Path, index: str = "exact",
                 answer_cache_bytes: int = ANSWER_CACHE_BYTES) -> None:
        self.db = db
        self.encoder = encoder
        self.folder = Path(folder)
        self.index_kind = index  # vector index kind (matcher.retrieval.index): exact, hnsw or ivf
        self.engine: MatchEngine | None = None
        self.revision = -1
        self.error: str | None = None  # why the last start failed, if it did
        self._ready = threading.Event()
        self._lock = RWLock()
        self.answers = AnswerCache(answer_cache_bytes)  # emptied by `_engine_changes`
        self._save_lock = threading.Lock()  # two readers may save at once
        # The deployed learned ranker (matcher.learning), re-attached whenever the engine is rebuilt.
        self.reranker = None
        self.ranker_version = "default"
        self.database_id = 0  # the database's identity (meta.database_id), read at start

    # -- start-up and persistence ----------------------------------------------------------
    def start(self) -> str:
        """Load the saved index if it matches the database revision, else rebuild.

        Returns "loaded" or "rebuilt". Sets `ready` (also when it fails, with `error` set)."""
        try:
            how = self._start()
            self.error = None
            release_freed_memory()  # the build's temporaries: 94 MB at 42k capabilities with e5
            return how
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._ready.set()

    def start_failed(self) -> None:
        """Mark start-up as over although `start` never ran (e.g. the model did not load)."""
        self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for `start` to finish; True when the engine is there."""
        self._ready.wait(timeout)
        return self.engine is not None

    def _start(self) -> str:
        with self._lock.write():
            with self.db.connect() as conn:
                rev = revision(conn)
                self.database_id = database_id(conn)
            stamp = self._read_stamp() or {}
            saved_rev = stamp.get("revision")
            if (isinstance(saved_rev, int) and 0 <= saved_rev <= rev
                    and {**stamp, "revision": rev} == self._stamp(rev)):
                try:
                    engine = MatchEngine.load(self.folder / "engine", self.encoder)
                    engine.reranker = self.reranker
                    engine.prepare()
                    self._engine_changes()
                    self.engine = engine
                    self.revision = saved_rev
                    replayed = self._catch_up(rev) if saved_rev < rev else 0
                    log.info("index loaded", extra={"revision": self.revision, "saved_revision": saved_rev,
                                                    "replayed": replayed, "folder": str(self.folder)})
                    if saved_rev < rev:
                        self._save()
                    return "loaded"
                except Exception as exc:  # a damaged or foreign save: rebuild from the database
                    log.warning("saved index unusable, rebuilding: %s", exc)
            self._rebuild()
            self._save()
            return "rebuilt"

    def _rebuild(self) -> None:
        started = time.perf_counter()
        with self.db.connect() as conn:
            rev = revision(conn)  # read first: data newer than the stamp only causes a re-check
            caps, dems, parts = store.all_records(conn)
        params = EngineParams(index=IndexParams(kind=self.index_kind))
        engine = MatchEngine(self.encoder, params).fit(caps, dems, parts)
        engine.reranker = self.reranker
        engine.prepare()  # before the engine is seen: readiness means reasons are ready too
        self._engine_changes()
        self.engine = engine
        self.revision = rev
        counts = {"capabilities": len(caps), "demands": len(dems), "partners": len(parts)}
        del caps, dems, parts  # the engine keeps what it needs
        release_freed_memory()
        log.info("index built", extra={"revision": rev, **counts,
                                       "seconds": round(time.perf_counter() - started, 2)})

    def set_reranker(self, reranker, version: str) -> None:
        """Deploy a learned ranker (None: the default order) for every match from now on."""
        with self._lock.write():
            if reranker is not self.reranker or version != self.ranker_version:  # a start's "default" again is none
                self._engine_changes()
            self.reranker, self.ranker_version = reranker, version
            if self.engine is not None:
                self.engine.reranker = reranker

    def describe_engine(self) -> str:
        """Encoder and fusion, as impressions record them."""
        e = self.engine
        if e is None:
            return ""
        f, a = e.params.fusion, e.params.aggregation
        return f"{e.encoder.name}; {f.method} w={f.lexical_weight:g}; {a.method}"

    def save(self) -> None:
        """Write the engine and its revision stamp under `folder` (atomically replaced)."""
        with self._lock.read():
            self._save()

    def _save(self) -> None:
        if self.engine is None:
            return
        with self._save_lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Several processes share the folder: one saves at a time, and never over a newer save
            # of the same database (an engine and a stamp of different saves would lie).
            with open(self.folder / ".save.lock", "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    saved = self._read_stamp() or {}
                    if (saved.get("database") == self.database_id and isinstance(saved.get("revision"), int)
                            and saved["revision"] > self.revision and {**saved, "revision": 0} == self._stamp(0)
                            and saved["revision"] <= self.db_revision()):
                        return
                    # A save ahead of the database (restored from a backup, or a stamp damaged) is no
                    # newer save: it is replaced, or every start would rebuild and none would fix it,
                    # and once the database reached that revision again the stale save would load.
                    (self.folder / "revision.json").unlink(missing_ok=True)  # no stamp while the engine is replaced
                    self.engine.save(self.folder / "engine")
                    tmp = self.folder / f"revision.json.{os.getpid()}.tmp"
                    tmp.write_text(json.dumps(self._stamp(self.revision)))
                    tmp.replace(self.folder / "revision.json")
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _stamp(self, rev: int) -> dict:
        """What a saved index must match to be reused (the index kind only when not the default,
        so saves made before the setting existed stay valid)."""
        stamp = {"revision": rev, "encoder": self.encoder.name, "database": self.database_id}
        return stamp if self.index_kind == "exact" else {**stamp, "index": self.index_kind}

    def _read_stamp(self) -> dict | None:
        try:
            return json.loads((self.folder / "revision.json").read_text())
        except (OSError, ValueError):
            return None

    # -- reading and writing ---------------------------------------------------------------
    def db_revision(self) -> int:
        with self.db.connect() as conn:
            return revision(conn)

    @contextmanager
    def read(self) -> Iterator[MatchEngine]:
        """The engine, current with the database, held still while the caller reads it."""
        self.bring_forward()
        with self._lock.read():
            assert self.engine is not None
            yield self.engine

    def answer(self, kind: str, query, *rest, compute: Callable[[], T]) -> T:
        """The engine's answer to a question (`answers.question_key(kind, query, *rest)`), kept
        until the index changes. Call inside `read()`, with `compute` asking the engine read."""
        return self.answers.get(question_key(kind, query, *rest), compute)

    def _engine_changes(self) -> None:
        """Called, with the write lock held, before anything that changes the engine's answers:
        a replayed or applied record, a rebuild, a load, a ranker. A write that touched no
        record (feedback, tokens, review decisions) keeps them."""
        self.answers.clear()

    def bring_forward(self) -> int:
        """Catch the engine up with every write committed so far, by any process; returns the
        database revision it is now at least as new as. NotReady while there is no engine."""
        if self.engine is None:
            raise NotReady(f"the index could not be built: {self.error}" if self.error
                           else "the index is still loading; try again shortly")
        seen = self.db_revision()
        if seen != self.revision:
            with self._lock.write():
                rev = self.db_revision()
                if rev != self.revision:
                    self._catch_up(rev)
        return seen

    def prewarm(self, texts: list[str]) -> None:
        """Embed `texts` into the embedding cache before a big write, so the write lock is then
        held only for cache reads (with a cached encoder; a no-op otherwise)."""
        from matcher.retrieval.encoders import CachedEncoder

        if isinstance(self.encoder, CachedEncoder) and texts:
            self.encoder.encode_documents(texts)

    def write(self, fn: Callable[[Connection], tuple[T, Change]]) -> T:
        """Run `fn` in one database transaction, bump the revision, then update the engine.

        If `fn` raises, nothing is committed and the engine is untouched."""
        with self._lock.write():
            with self.db.begin() as conn:
                result, change = fn(conn)
                rev = bump_revision(conn)
                _log_change(conn, rev, change)
            if self.engine is None:  # not started yet: the start reads the database as it then is
                return result
            try:
                if rev == self.revision + 1:  # no other process wrote meanwhile: apply ours directly
                    self._apply(change)
                    self.revision = rev
                else:
                    self._catch_up(rev)
            except Exception:  # the database is right; the next read catches up or rebuilds
                log.exception("could not apply a change to the index; it will be rebuilt")
                self.revision = -1
            return result

    def _catch_up(self, target: int) -> int:
        """Bring the engine to revision `target` by replaying the change log (rebuild when the
        log does not cover every revision since ours). Call with the write lock held; returns
        how many records were replayed."""
        if self.engine is None or self.revision < 0 or target < self.revision:
            self._rebuild()
            return 0
        with self.db.connect() as conn:
            rows = conn.execute(select(change_log.c.revision, change_log.c.kind, change_log.c.record_id)
                                .where(change_log.c.revision > self.revision, change_log.c.revision <= target)
                                ).all()
            if {r.revision for r in rows} != set(range(self.revision + 1, target + 1)):
                log.warning("index behind the database beyond its change log (revision %s, database %s): "
                            "rebuilding", self.revision, target)
                self._rebuild()
                return 0
            touched: dict[str, set[str]] = {k: set() for k in _KINDS}
            for r in rows:
                if r.kind:
                    touched[r.kind.lstrip("-")].add(r.record_id)
            found_p = store.get_partners(conn, sorted(touched["partner"]))
            found_c = store.get_capabilities(conn, sorted(touched["capability"]))
            found_d = store.get_demands(conn, sorted(touched["demand"]))
        if any(touched.values()):
            self._engine_changes()
        engine = self.engine
        for pid in touched["partner"] - found_p.keys():
            engine.remove_partner(pid)
        gone_c = [i for i in touched["capability"] - found_c.keys() if i in engine.capabilities]
        if gone_c:
            engine.remove_capabilities(gone_c)
        gone_d = [i for i in touched["demand"] - found_d.keys() if i in engine.demands]
        if gone_d:
            engine.remove_demands(gone_d)
        if found_p:
            engine.upsert_partners([store.partner_record(r) for r in found_p.values()])
        if found_c:
            engine.upsert_capabilities([store.capability_record(r) for r in found_c.values()])
        if found_d:
            engine.upsert_demands([store.demand_record(r) for r in found_d.values()])
        self.revision = target
        return sum(len(v) for v in touched.values())

    def _apply(self, change: Change) -> None:
        engine = self.engine
        if engine is None:
            raise RuntimeError("the index is not started")
        if not change.empty():
            self._engine_changes()
        gone_d = [i for i in change.removed_demands if i in engine.demands]
        if gone_d:
            engine.remove_demands(gone_d)
        gone_c = [i for i in change.removed_capabilities if i in engine.capabilities]
        if gone_c:
            engine.remove_capabilities(gone_c)
        for pid in change.removed_partners:
            engine.remove_partner(pid)
        if change.partners:
            engine.upsert_partners(change.partners)
        if change.capabilities:
            engine.upsert_capabilities(change.capabilities)
        if change.demands:
            engine.upsert_demands(change.demands)

    def in_sync(self) -> bool:
        return self.engine is not None and self.db_revision() == self.revision


def _log_change(conn: Connection, rev: int, change: Change) -> None:
    """The change-log rows of one write (one row with kind "" when it touched no record)."""
    entries = ([("partner", p.id) for p in change.partners] + [("capability", c.id) for c in change.capabilities]
               + [("demand", d.id) for d in change.demands]
               + [("-partner", i) for i in change.removed_partners]
               + [("-capability", i) for i in change.removed_capabilities]
               + [("-demand", i) for i in change.removed_demands]) or [("", "")]
    conn.execute(insert(change_log), [{"revision": rev, "seq": n, "kind": kind, "record_id": rid}
                                      for n, (kind, rid) in enumerate(entries)])
    if rev % 1000 == 0:
        conn.execute(delete(change_log).where(change_log.c.revision <= rev - LOG_KEEP_REVISIONS))
