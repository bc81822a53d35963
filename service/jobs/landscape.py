"""The demand landscape in the service, and staff decisions on near-duplicate demands.

`LandscapeCache` builds `matcher.landscape.build.build_landscape` for the current demands in a
background thread and stores the result (the HTML report too) in the `landscape_builds` table
keyed by the database revision, so a page view does not rebuild it and every process on the
database (`serve --workers N`, several servers) serves the one build; a build whose process
died is taken over through its lease. The build runs on a snapshot of the live engine (saved and
loaded under the read lock, ~0.1 s on the demo corpus), so writes never wait for the
clustering, which takes seconds.

`DemandLinks` (merges and links) live in the `demand_links` table as the JSON the engine
writes; merging copies the records into the JSON and never changes a `demands` row. Writes
use optimistic concurrency (a version column), so two processes cannot lose an update.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import math
import os
import pickle
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from matcher.errors import MatcherError
from matcher.landscape import DemandLinks, Landscape
from service.errors import ApiError, Conflict, Invalid, NotFound
from service.jobs.live import LiveIndex
from service.jobs.process import local_process_alive
from service.jobs.snapshots import snapshot_folder
from service.schemas import DemandLinkInfo, IdStr, MergePublic, Strict, UtcDateTime, free_text
from service.storage import store
from service.storage.db import demand_links, landscape_builds, utcnow

log = logging.getLogger("techmatch.service.landscape")

TITLE = "技术需求图谱 Demand landscape"
LINKS_KEY = "default"
# The report and the agendas are our own escaped HTML with inline styles and data: images;
# no script may run in them.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")


# -- the cached landscape ------------------------------------------------------------------------
@dataclass(frozen=True)
class LandscapeResult:
    """One finished build: for `revision`, the landscape and its report (or why it failed)."""

    revision: int
    land: Landscape | None
    html: str = ""
    error: str = ""
    computed_at: UtcDateTime = field(default_factory=utcnow)
    seconds: float = 0.0
    xlsx: dict[str, bytes] = field(default_factory=dict, compare=False)  # filled on first download
    key: int = -1  # the data revision this build was made for (`revision` is what its index had seen)

    @property
    def body(self) -> str:
        """The report's <body> content, for embedding in the site layout ("" if not found)."""
        _, sep, rest = self.html.partition("<body>")
        inner, sep2, _ = rest.rpartition("</body>")
        return inner if sep and sep2 else ""


@dataclass(frozen=True)
class LandscapeState:
    """What a view gets: status "ready", "computing" (maybe with an older `result`) or "failed"."""

    status: Literal["ready", "computing", "failed"]
    current_revision: int
    result: LandscapeResult | None

    @property
    def stale(self) -> bool:
        return self.result is not None and self.result.key != self.current_revision


LEASE_SECONDS = 30.0  # a build whose lease was not renewed this long is taken over
RENEW_SECONDS = 5.0  # how often a running build renews its lease
_LIVE_BUILDERS: set[str] = set()  # builders of this process (several apps in one process: the tests)


def _builder_alive(worker: str, lease_until: dt.datetime, now: dt.datetime) -> bool:
    """Whether the build held by `worker` ("host:pid:id") may still be running: its lease lies
    ahead and, on this host, its process (or, in this process, its thread) is there."""
    if lease_until <= now:
        return False
    alive = local_process_alive(worker, _LIVE_BUILDERS)
    return True if alive is None else alive


def _pack(land: Landscape, html: str) -> bytes:
    return zlib.compress(pickle.dumps((land, html), protocol=pickle.HIGHEST_PROTOCOL), 6)


class _LandscapeUnpickler(pickle.Unpickler):
    """Loads only what a landscape is made of (its dataclasses, records and numpy arrays), so a
    row someone slipped into the database cannot name any other callable to run."""

    def find_class(self, module: str, name: str):
        if (module.startswith("matcher.landscape.") or module == "matcher.records"
                or (module, name) in _NUMPY_ALLOWED):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a stored landscape may not refer to {module}.{name}")


_NUMPY_ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy._core.numeric", "_frombuffer"),
                  ("numpy.core.numeric", "_frombuffer"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
                  ("numpy.core.multiarray", "scalar")}


def _unpack(data: bytes) -> tuple[Landscape, str]:
    land, html = _LandscapeUnpickler(io.BytesIO(zlib.decompress(data))).load()
    if not isinstance(land, Landscape) or not isinstance(html, str):
        raise TypeError("not a stored landscape")
    return land, html


class LandscapeCache:
    """The landscape of the current data revision, built once for all processes on a database.

    The first process to see a revision without a build claims its `landscape_builds` row and
    builds in a background thread, renewing its lease; the others answer "computing" (with the
    previous result) until the row is done, then load the stored result. A row whose builder
    died (or stopped renewing) is claimed by the next process that looks."""

    def __init__(self, live: LiveIndex, *, title: str = TITLE,
                 build: Callable[[Any], Landscape] | None = None) -> None:
        self.live, self.title = live, title
        self.db = live.db
        self._build = build or default_build
        self._lock = threading.Lock()
        self._result: LandscapeResult | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.builds = 0  # how many builds this process ran (tests check the cache)

    def view(self) -> LandscapeState:
        """The current state; claims and starts a build when none is stored or running."""
        rev = self.live.db_revision()
        with self._lock:
            res = self._result
            if res is not None and res.key == rev:
                return LandscapeState("failed" if res.land is None else "ready", rev, res)
        with self.db.connect() as conn:
            row = conn.execute(select(landscape_builds.c.status, landscape_builds.c.worker,
                                      landscape_builds.c.lease_until)
                               .where(landscape_builds.c.revision == rev)).first()
        if row is not None and row.status != "building":
            stored = self._load(rev)
            if stored is not None:
                return LandscapeState("failed" if stored.land is None else "ready", rev, stored)
        elif row is None or not _builder_alive(row.worker, row.lease_until, utcnow()):
            self._claim_and_start(rev, row)
        return LandscapeState("computing", rev, self._previous(rev))

    @property
    def has_result(self) -> bool:
        """Whether a build succeeded at some revision (the answers can then be stale, never empty)."""
        res = self._result
        return res is not None and res.land is not None

    def wait(self, timeout: float = 120.0) -> LandscapeState:
        """Block until a build for the current revision finished (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.view()
            left = deadline - time.monotonic()
            if state.status != "computing" or left <= 0:
                return state
            with self._done:
                self._done.wait(min(left, 0.5))

    def stop(self, timeout: float = 5.0) -> None:
        """Wait a little for a build in progress; one still running gives up its lease so that
        another process takes it over at once (the thread cannot be cut short)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        _LIVE_BUILDERS.discard(self.worker_id)
        if thread is not None and thread.is_alive():
            with self.db.begin() as conn:
                conn.execute(update(landscape_builds)
                             .where(landscape_builds.c.worker == self.worker_id,
                                    landscape_builds.c.status == "building")
                             .values(lease_until=utcnow()))

    def xlsx(self, result: LandscapeResult) -> bytes:
        from matcher.landscape.report import xlsx_bytes

        if "data" not in result.xlsx:
            assert result.land is not None
            result.xlsx["data"] = xlsx_bytes(result.land)
        return result.xlsx["data"]

    # -- the stored builds
    def _load(self, key: int, *, done_only: bool = False) -> LandscapeResult | None:
        """The stored result of revision `key` (kept for later views), or None when it cannot
        be read (a build of another release: it is then built again)."""
        with self.db.connect() as conn:
            row = conn.execute(select(landscape_builds).where(landscape_builds.c.revision == key)).first()
        if row is None or row.status == "building" or (done_only and row.status != "done"):
            return None
        shown = row.built_revision if row.built_revision is not None else key
        if row.status == "failed":
            result = LandscapeResult(shown, None, error=row.error, seconds=row.seconds, key=key,
                                     computed_at=row.finished_at or utcnow())
        else:
            try:
                land, html = _unpack(row.data)
            except Exception as exc:  # unreadable: build it again
                log.warning("a stored landscape could not be read; building it again",
                            extra={"revision": key, "error": f"{type(exc).__name__}: {exc}"})
                with self.db.begin() as conn:
                    conn.execute(delete(landscape_builds).where(landscape_builds.c.revision == key,
                                                                landscape_builds.c.status == row.status))
                return None
            result = LandscapeResult(shown, land, html, seconds=row.seconds, key=key,
                                     computed_at=row.finished_at or utcnow())
        with self._lock:
            if self._result is None or self._result.key <= key:
                self._result = result
        return result

    def _previous(self, rev: int) -> LandscapeResult | None:
        """The newest finished build before `rev` (what "computing" shows meanwhile)."""
        with self._lock:
            res = self._result
        if res is not None and res.land is not None:
            return res
        with self.db.connect() as conn:
            key = conn.execute(select(func.max(landscape_builds.c.revision))
                               .where(landscape_builds.c.status == "done",
                                      landscape_builds.c.revision < rev)).scalar()
        return self._load(int(key), done_only=True) if key is not None else res

    def _claim_and_start(self, rev: int, seen) -> None:
        """Claim revision `rev`'s build (insert its row, or take over the dead builder's row `seen`)
        and start building; nothing happens when another process was first."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return  # this process is building already (an older revision: the next view claims)
            now = utcnow()
            lease = now + dt.timedelta(seconds=LEASE_SECONDS)
            try:
                with self.db.begin() as conn:
                    if seen is None:
                        conn.execute(insert(landscape_builds).values(
                            revision=rev, status="building", worker=self.worker_id, lease_until=lease, builds=1,
                            error="", seconds=0.0, started_at=now))
                    else:
                        taken = conn.execute(
                            update(landscape_builds)
                            .where(landscape_builds.c.revision == rev, landscape_builds.c.status == "building",
                                   landscape_builds.c.worker == seen.worker,
                                   landscape_builds.c.lease_until == seen.lease_until)
                            .values(worker=self.worker_id, lease_until=lease, started_at=now,
                                    builds=landscape_builds.c.builds + 1)).rowcount
                        if taken != 1:
                            return
                        log.info("taking over a landscape build whose builder is gone",
                                 extra={"revision": rev, "builder": seen.worker})
            except IntegrityError:
                return  # another process claimed it first
            _LIVE_BUILDERS.add(self.worker_id)
            self._thread = threading.Thread(target=self._run, args=(rev,), name="techmatch-landscape", daemon=True)
            self._thread.start()

    def _renew(self, rev: int, finished: threading.Event) -> None:
        while not finished.wait(RENEW_SECONDS):
            with self.db.begin() as conn:
                conn.execute(update(landscape_builds)
                             .where(landscape_builds.c.revision == rev, landscape_builds.c.worker == self.worker_id,
                                    landscape_builds.c.status == "building")
                             .values(lease_until=utcnow() + dt.timedelta(seconds=LEASE_SECONDS)))

    def _run(self, rev: int) -> None:
        from matcher.landscape.report import render_html

        finished = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(rev, finished), name="techmatch-landscape-lease",
                                   daemon=True)
        renewer.start()
        started = time.perf_counter()
        built = rev
        try:
            self.live.wait_ready()
            with snapshot_folder() as tmp:
                engine, built = snapshot(self.live, tmp / "engine")
                land = self._build(engine)
            html = render_html(land, title=self.title)
            result = LandscapeResult(built, land, html, seconds=time.perf_counter() - started, key=rev)
            values = {"status": "done", "data": _pack(land, html)}
            log.info("landscape built", extra={"revision": rev, "index_revision": built, "demands": len(land.demands),
                                               "seconds": round(result.seconds, 2), "worker": self.worker_id})
        except Exception as exc:
            known = isinstance(exc, (MatcherError, ApiError))
            if not known:
                log.exception("the landscape could not be built")
            message = str(exc) if known else f"internal error: {type(exc).__name__}"
            result = LandscapeResult(built, None, error=message, seconds=time.perf_counter() - started, key=rev)
            values = {"status": "failed", "error": message}
        finally:
            finished.set()
        renewer.join()
        result = replace(result, computed_at=utcnow())  # as every process reads it back
        try:
            with self.db.begin() as conn:
                mine = conn.execute(
                    update(landscape_builds)
                    .where(landscape_builds.c.revision == rev, landscape_builds.c.worker == self.worker_id,
                           landscape_builds.c.status == "building")
                    .values(built_revision=built, seconds=result.seconds, finished_at=result.computed_at,
                            **values)).rowcount
                if mine == 1 and values["status"] == "done":  # older builds are no longer shown anywhere
                    conn.execute(delete(landscape_builds).where(landscape_builds.c.revision < rev))
        except Exception:
            log.exception("the landscape could not be stored")
            mine = 0
        if mine != 1:
            log.warning("a landscape build was taken over by another process; its result is dropped",
                        extra={"revision": rev, "worker": self.worker_id})
        with self._done:
            if mine == 1 and (self._result is None or self._result.key <= rev):
                self._result = result
            self.builds += 1
            self._done.notify_all()


def snapshot(live: LiveIndex, folder: Path):
    """A private copy of the live engine (saved and loaded), and the revision it is at."""
    from matcher.retrieval.engine import MatchEngine

    with live.read() as engine:
        rev = live.revision
        engine.save(folder)
    return MatchEngine.load(folder, live.encoder), rev


def default_build(engine) -> Landscape:
    """`build_landscape` with the score kind and threshold calibrated for the engine's model
    (as `techmatch landscape` does without judgements); an error names the known models."""
    from matcher.landscape import CALIBRATED_THRESHOLDS, build_landscape, default_threshold

    name = engine.encoder.name
    kind = next((k for m, k in CALIBRATED_THRESHOLDS if m == name), "fit")
    return build_landscape(engine, threshold=default_threshold(name, kind), kind=kind)


# -- the JSON summary ----------------------------------------------------------------------------
def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def summary(result: LandscapeResult, links: DemandLinks) -> dict[str, Any]:
    """Clusters (names, sizes, coverage), coverage totals, weak clusters and duplicate groups
    with the staff decision on each."""
    from matcher.landscape.report import cluster_code, findings

    land = result.land
    assert land is not None
    by_cluster = {cc.cluster: cc for cc in land.clusters}

    def cluster(c: int) -> dict[str, Any]:
        cc, name = by_cluster[c], land.names[c]
        return {"cluster": cluster_code(c), "index": c, "name": name.label, "terms": list(name.terms),
                "language": name.language, "size": cc.size, "covered_share": _num(cc.covered_share),
                "mean_best_score": _num(cc.mean_best), "uncovered": int(round(cc.weakness)), "flagged": cc.flagged}

    covered = sum(c.covered for c in land.coverage)
    n = len(land.demands)
    return {
        "revision": result.revision, "computed_at": result.computed_at, "seconds": round(result.seconds, 2),
        "model": land.model, "demands": n,
        "clustering": {"method": land.clustering.method, "k": land.clustering.k,
                       "silhouette": _num(land.clustering.silhouette)},
        "clusters": [cluster(c) for c in sorted(by_cluster)],
        "coverage": {"score_kind": land.score_kind, "threshold": _num(land.threshold), "demands": n,
                     "covered": covered, "covered_share": _num(covered / n) if n else None},
        "weak_clusters": [cluster(cc.cluster) for cc in land.clusters if cc.flagged],
        "weakest_clusters": [cluster_code(cc.cluster) for cc in land.clusters[:5]],
        "duplicate_groups": [
            {"group": no, "label": g.label, "demand_ids": list(g.ids),
             "pairs": [{"a": q.a, "b": q.b, "label": q.label, "cosine": _num(q.cosine), "excess": _num(q.excess),
                        "jaccard": _num(q.jaccard)} for q in g.pairs],
             "decision": decision(g.ids, [(q.a, q.b) for q in g.pairs], links)}
            for no, g in enumerate(land.duplicates, start=1)],
        "findings": findings(land),
    }


def decision(ids: Sequence[str], pairs: Sequence[tuple[str, str]], links: DemandLinks) -> str:
    """A duplicate group's state: "merged" (all in one merge), "linked" (every pair linked
    or merged together), "partly" (some) or "open"."""
    merges = {m.id if m else None for m in (links.merge_of(i) for i in ids)}
    if len(merges) == 1 and None not in merges:
        return "merged"

    def decided(a: str, b: str) -> bool:
        ma, mb = links.merge_of(a), links.merge_of(b)
        return (ma is not None and ma is mb) or tuple(sorted((a, b))) in links.links

    done = [decided(a, b) for a, b in pairs]
    return "linked" if done and all(done) else "partly" if any(done) else "open"


# -- staff decisions: merges and links -----------------------------------------------------------
MergeId = free_text(200)
Note = free_text(2000)


class DemandLinksChange(Strict):
    """One decision. merge: two or more `demand_ids` (`primary` gives title and text; default
    the first; a `primary` not among them joins the merge as its first member: "merge these
    into D1"); unmerge: `merge_id`, or any member in `demand_ids`; link: every pair of
    `demand_ids`; unlink: every pair of `demand_ids` (each must be linked)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        {"if": {"properties": {"action": {"enum": ["merge", "link", "unlink"]}}},
         "then": {"required": ["demand_ids"], "properties": {"demand_ids": {"minItems": 2}}}},
        {"if": {"properties": {"action": {"const": "unmerge"}}},
         "then": {"anyOf": [{"required": ["merge_id"], "properties": {"merge_id": {"type": "string"}}},
                            {"required": ["demand_ids"], "properties": {"demand_ids": {"minItems": 1}}}]}},
    ]})

    action: Literal["merge", "unmerge", "link", "unlink"]
    demand_ids: list[IdStr] = Field(default_factory=list, max_length=100, json_schema_extra={"uniqueItems": True})
    primary: IdStr | None = Field(None, description=(
        "merge: the demand whose title and text the merge shows (default the first of `demand_ids`); "
        "one that is not among `demand_ids` joins the merge as its first member"))
    merge_id: MergeId | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _ids_fit_the_action(self) -> DemandLinksChange:
        if len(set(self.demand_ids)) != len(self.demand_ids):
            raise ValueError("demand_ids has the same id twice")
        if self.action != "unmerge" and len(self.demand_ids) < 2:
            raise ValueError(f"{self.action} needs two or more distinct demand_ids")
        if self.action == "unmerge" and self.merge_id is None and not self.demand_ids:
            raise ValueError("unmerge needs merge_id or demand_ids")
        return self


class LinkPublic(BaseModel):
    a: str
    b: str
    note: str
    created: str


class DemandLinksPublic(BaseModel):
    merges: list[MergePublic]
    links: list[LinkPublic]
    version: int
    updated_by: str
    updated_at: UtcDateTime | None


def load_links(conn: Connection) -> tuple[DemandLinks, dict[str, Any]]:
    """The stored decisions and their row (version, who, when); empty when none stored."""
    row = conn.execute(select(demand_links).where(demand_links.c.key == LINKS_KEY)).first()
    if row is None:
        return DemandLinks(), {"version": 0, "updated_by": "", "updated_at": None}
    meta = {"version": int(row.version), "updated_by": row.updated_by, "updated_at": row.updated_at}
    return DemandLinks.from_json(row.data), meta


def links_out(links: DemandLinks, meta: dict[str, Any]) -> DemandLinksPublic:
    return DemandLinksPublic(merges=[merge_out(m) for m in links.merges.values()],
                             links=[LinkPublic(a=k.a, b=k.b, note=k.note, created=k.created)
                                    for k in links.links.values()], **meta)


def merge_out(m) -> MergePublic:
    return MergePublic(id=m.id, primary_id=m.primary_id, member_ids=list(m.member_ids), note=m.note,
                       created=m.created)


def link_info(links: DemandLinks, demand_id: str) -> DemandLinkInfo:
    m = links.merge_of(demand_id)
    return DemandLinkInfo(merge=merge_out(m) if m else None, linked=links.linked(demand_id))


class _Retry(Exception):
    """Another writer changed the decisions between our read and our write."""


def change_links(db, change: DemandLinksChange, *, who: str, attempts: int = 5) -> DemandLinksPublic:
    """Apply one decision and store it; retried when another writer got in between."""
    for _ in range(attempts):
        try:
            with db.begin() as conn:
                links, meta = load_links(conn)
                _apply(conn, links, change)
                now, version = utcnow(), meta["version"] + 1
                values = {"data": links.to_json(), "version": version, "updated_by": who, "updated_at": now}
                if meta["version"] == 0:
                    try:
                        conn.execute(insert(demand_links).values(key=LINKS_KEY, **values))
                    except IntegrityError:
                        raise _Retry from None
                else:
                    stmt = (update(demand_links).where(demand_links.c.key == LINKS_KEY,
                                                       demand_links.c.version == meta["version"]).values(**values))
                    if conn.execute(stmt).rowcount != 1:
                        raise _Retry
        except _Retry:
            continue
        return links_out(links, {"version": version, "updated_by": who, "updated_at": now})
    raise Conflict("the demand links changed concurrently; try again")


def _apply(conn: Connection, links: DemandLinks, change: DemandLinksChange) -> None:
    ids = list(dict.fromkeys(change.demand_ids))
    if change.action == "merge" and change.primary is not None and change.primary not in ids:
        ids.insert(0, change.primary)  # "merge these into the primary": it joins the group
    if change.action in ("merge", "link"):
        if len(ids) < 2:
            raise Invalid(f"{change.action} needs two or more distinct demand_ids")
        rows = store.get_demands(conn, ids)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise NotFound(f"no demand {', '.join(repr(i) for i in missing)}")
    try:
        if change.action == "merge":
            links.merge([store.demand_record(rows[i]) for i in ids], primary=change.primary, note=change.note)
        elif change.action == "unmerge":
            merge_id = change.merge_id
            if merge_id is None:
                found = next((m for m in (links.merge_of(i) for i in ids) if m is not None), None)
                if found is None:
                    raise NotFound("none of the demand_ids is in a merge" if ids else "give merge_id or demand_ids")
                merge_id = found.id
            links.unmerge(merge_id)
        elif change.action == "link":
            for a, b in itertools.combinations(ids, 2):
                links.link(a, b, note=change.note)
        else:
            if len(ids) < 2:
                raise Invalid("unlink needs two or more distinct demand_ids")
            for a, b in itertools.combinations(ids, 2):
                links.unlink(a, b)
    except MatcherError as exc:
        if type(exc) is MatcherError:  # "already in a merge" and the like
            raise Conflict(str(exc)) from None
        raise
