"""Conference batch runs as background jobs: rank every chosen demand, assign meetings,
schedule them and write the files, as `techmatch conference` does, inside the service.

    jobs = ConferenceJobs(db, live, settings.jobs_dir())
    jobs.recover()                      # jobs whose process died become "interrupted"
    jobs.start()
    row = jobs.submit(conn_params, created_by="staff")     # validated, stored "queued"
    jobs.resume(job_id)                 # an interrupted or failed job, reusing its checkpoint
    jobs.stop()                         # at shutdown: a running job stops after its chunk

One runner thread per process runs the jobs one at a time, in submission order. With several
processes on one database (`techmatch serve --workers N`, or several servers), the database is
the queue: a job is claimed by exactly one process (an UPDATE from queued to running that only
one can win), idle runners look for queued jobs every POLL_SECONDS, and a job whose process
died (same host: its pid is gone; another host: no progress for STALE_AFTER) is marked
interrupted by any live one and resumes from its checkpoint. A job's state lives in the
`conference_jobs` table (so a restart shows it) and its files in `<jobs_dir>/<job id>/`:
`ranking-checkpoint.jsonl` (ranked demands, appended per chunk), then conference.xlsx,
assignment.csv, schedule.csv, unmet.csv and agendas/*.html. Ranking holds the live index's
read lock one chunk at a time, so writes wait at most one chunk.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import queue
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection

from matcher.conference.assign import AssignmentConstraints, InfeasibleError, PairListRule, SameValueRule
from matcher.conference.merged import JointRule, attendees, enterprises_of, joint_demand, merged_ids
from matcher.conference.rules import parse_rule
from matcher.conference.run import default_floor
from matcher.errors import InputError, MatcherError
from matcher.records import Demand, Partner
from service.errors import ApiError, Conflict, Invalid, NotFound
from service.jobs.live import LiveIndex
from service.jobs.process import local_process_alive
from service.schemas import ID_SCHEMA, NO_NUL, WS, IdStr, JsonInt, Short, Strict, UtcDateTime, free_text
from service.storage import store
from service.storage.db import conference_jobs, demands, partners, utcnow

log = logging.getLogger("techmatch.service.conference")

CHECKPOINT_NAME = "ranking-checkpoint.jsonl"
STATUSES = ("queued", "running", "done", "failed", "interrupted")
RESUMABLE = frozenset({"failed", "interrupted"})
DEFAULT_TITLE = "技术需求对接会 Technology matchmaking conference"
MEDIA_TYPES = {".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               ".csv": "text/csv; charset=utf-8", ".html": "text/html; charset=utf-8", ".pdf": "application/pdf"}


# -- request and response schemas ----------------------------------------------------------
class PairIn(Strict):
    demand_id: IdStr
    partner_id: IdStr


# The grammar of times, windows and rule lines (matcher.conference.schedule / .rules) as JSON
# Schema patterns, white space spelled out (service.schemas.WS). What a pattern cannot say (a
# window's start before its end, slots that overlap or do not fit, one rule of each kind,
# min_per_demand <= max_per_demand) is checked in `plan` and listed in docs/reliability.md.
_S, _S0 = f"[{WS}]+", f"[{WS}]*"
_TIME = f"{_S0}(?:[01]?[0-9]|2[0-4]):[0-5][0-9]{_S0}"
_WINDOW = f"(?:{_TIME}-{_TIME}|{_S0})"
WINDOWS_PATTERN = f"^{_WINDOW}(?:[,;，；]{_WINDOW})*$"
_FIELD = "[A-Za-z0-9_.-]+"
_N = "[0-9]+"
RULE_PATTERN = ("^" + _S0 + "(?:" + "|".join((
    f"at{_S}most{_S}{_N}{_S}per{_S}partner{_S}{_FIELD}",
    f"最多{_S0}{_N}{_S0}场?{_S0}每个?单位{_S0}{_FIELD}",
    f"at{_S}most{_S}{_N}{_S}per{_S}demand{_S}{_FIELD}{_S}and{_S}partner",
    f"最多{_S0}{_N}{_S0}场?{_S0}每县每伙伴{_S0}{_FIELD}",
    f"at{_S}least{_S}1{_S}(?:local|foreign){_S}{_FIELD}{_S0}={_S0}{_FIELD}",
    f"至少{_S0}1{_S0}个?(?:本地|外地){_S0}{_FIELD}{_S0}={_S0}{_FIELD}",
    f"{_FIELD}{_S0}={_S0}{_FIELD}")) + ")" + _S0 + "$")
Windows = Annotated[str, StringConstraints(min_length=1, max_length=500), NO_NUL,
                    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 500, "pattern": WINDOWS_PATTERN,
                                    "description": "HH:MM-HH:MM windows separated by commas, each start before "
                                                   "its end"})]
Rule = Annotated[str, StringConstraints(min_length=1, max_length=200), NO_NUL,
                 WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200, "pattern": RULE_PATTERN})]
Name = free_text(500, nonblank=True, strip=True)
Title = free_text(200)


class ContractIn(Strict):
    """An existing contract: the enterprise never meets this partner again."""

    enterprise: Name
    partner_id: IdStr


class AvailabilityIn(Strict):
    """When one side can meet: `id` is an enterprise name or a partner id; `windows` like
    "09:00-11:00,14:00-15:00"."""

    side: Literal["enterprise", "partner"]
    id: Name
    windows: Windows


class ConferenceJobCreate(Strict):
    """The parameters of one conference run (the options of `techmatch conference`).

    Demands: `demand_ids` (in that order), else every published demand, or every demand of
    the `industry` list (with `include_unpublished`, unpublished ones too)."""

    k: JsonInt = Field(20, ge=1, le=1000, description="candidate partners per demand")
    capacity: JsonInt = Field(3, ge=0, le=10_000, description="meetings per partner")
    min_per_demand: JsonInt = Field(1, ge=0, le=1000, description="soft minimum of partners per demand")
    max_per_demand: JsonInt = Field(3, ge=0, le=1000)
    min_score: float | None = Field(None, description="no meeting below this fit (default: the calibration's "
                                                      "'possible' threshold; 0 for none)")
    exclusions: list[PairIn] = Field(default_factory=list, max_length=100_000,
                                     description="pairs never proposed")
    contracts: list[ContractIn] = Field(default_factory=list, max_length=100_000,
                                        description="enterprise-partner pairs with a contract: excluded")
    exclusion_rules: list[Rule] = Field(
        default_factory=list, max_length=20,
        description="rules: DEMAND_FIELD=PARTNER_FIELD excludes (enterprise=owner); 'at most N per partner FIELD'; "
                    "'at most N per demand FIELD and partner'; 'at least 1 local|foreign DEMAND_FIELD=PARTNER_FIELD'")
    quotas: Annotated[dict[IdStr, Annotated[JsonInt, Field(ge=0, le=1000)]],
                      WithJsonSchema({"type": "object", "maxProperties": 100_000, "propertyNames": ID_SCHEMA,
                                      "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 1000}})
                      ] = Field(default_factory=dict, max_length=100_000,
                                description="demand_id -> meetings that demand wants (1, 3, 5 ...)")
    partner_min: JsonInt = Field(0, ge=0, le=10_000, description="soft minimum meetings per partner")
    fair: bool = Field(False, description="maximise the worst-off demand's best score first (max-min)")
    method: Literal["min_cost_flow", "milp", "greedy"] = "min_cost_flow"
    alternates: JsonInt = Field(3, ge=0, le=20, description="alternate partners listed per meeting")
    pdf: bool = Field(False, description="also write A4 PDF agendas (needs WeasyPrint on the server)")
    pins: list[PairIn] = Field(default_factory=list, max_length=100_000, description="pairs that must be kept")
    slots: Windows = "09:00-12:00,14:00-17:00"
    slot_minutes: JsonInt = Field(20, ge=1, le=24 * 60)
    tables: JsonInt = Field(20, ge=1, le=10_000)
    availability: list[AvailabilityIn] = Field(default_factory=list, max_length=100_000)
    demand_ids: list[IdStr] | None = Field(None, max_length=100_000)
    industry: list[Short] = Field(default_factory=list, max_length=200)
    include_unpublished: bool = False
    title: Title = DEFAULT_TITLE
    chunk_size: JsonInt = Field(16, ge=1, le=1000,
                                description="demands ranked per chunk (and per checkpoint line batch)")
    schedule_seconds: float = Field(10.0, gt=0, le=600, description="CP-SAT time limit")


class JobProgress(BaseModel):
    done: int
    total: int
    percent: float


class ConferenceJobPublic(BaseModel):
    """A job: `status` queued / running / done / failed / interrupted; `stage` ranking,
    assigning, scheduling, writing (while running); `summary` has the assignment's
    explanation lines and counts, `files` the outputs once done."""

    id: str
    status: str
    stage: str
    progress: JobProgress
    params: dict[str, Any]
    demand_ids: list[str]
    summary: dict[str, Any]
    objective: float | None
    greedy_objective: float | None
    gap: float | None
    error: str
    runs: int
    created_by: str
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    updated_at: UtcDateTime
    files: list[str]


class JobFile(BaseModel):
    name: str
    size: int
    media_type: str
    url: str


def job_out(row: dict) -> ConferenceJobPublic:
    total, done = int(row["progress_total"]), int(row["progress_done"])
    return ConferenceJobPublic(
        id=row["id"], status=row["status"], stage=row["stage"],
        progress=JobProgress(done=done, total=total, percent=round(100.0 * done / total, 1) if total else 0.0),
        params=dict(row["params"] or {}), demand_ids=list(row["demand_ids"] or []),
        summary=dict(row["summary"] or {}), objective=row["objective"], greedy_objective=row["greedy_objective"],
        gap=row["gap"], error=row["error"] or "", runs=int(row["runs"] or 0), created_by=row["created_by"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        updated_at=row["updated_at"], files=list((row["summary"] or {}).get("files", []) if row["status"] == "done"
                                                 else []))


# -- the plan: everything cheap to check, checked before a job is queued ----------------------
@dataclass
class Plan:
    """A validated run: the demands in order, the constraints and the schedule inputs."""

    demand_ids: list[str]
    constraints: AssignmentConstraints
    slots: list
    enterprise_windows: dict[str, list]
    partner_windows: dict[str, list]
    merged: dict[str, list[str]]  # surviving demand -> the demands merged into it


def _problem(loc: Sequence[Any], message: str, kind: str = "value_error", *, code: str = "",
             params: dict[str, Any] | None = None) -> dict:
    """One problem of the parameters; `code` and `params` let a page say it in its language
    (catalog key ``err_<code>``)."""
    return {"loc": ["body", *loc], "message": message, "type": kind, "code": code, "params": params or {}}


def _input_problem(loc: Sequence[Any], exc: InputError) -> dict:
    return _problem(loc, exc.reason, code=exc.code or "", params=exc.params)


# Problems of the stored records, not of the request: ids that are not (or no longer) there, or
# a selection that finds no demand. Only these: 409; any other problem: 422.
STATE_PROBLEMS = frozenset({"conf_unknown_demand", "conf_unknown_partner", "conf_not_selected",
                            "conf_unknown_enterprise", "conf_no_demands"})


def plan(conn: Connection, p: ConferenceJobCreate, *, max_k: int, demand_ids: Sequence[str] | None = None,
         ) -> Plan:
    """Check `p` against the database (ids, slots, windows, constraints); 422 listing every
    problem. `demand_ids` fixes the demands (a resumed job keeps its own)."""
    from matcher.conference.schedule import make_slots, parse_windows

    problems: list[dict] = []
    if p.k > max_k:
        problems.append(_problem(["k"], f"k is at most {max_k} in this service", code="conf_k_max",
                                 params={"limit": max_k}))
    slots: list = []
    try:
        slots = make_slots(p.slots, p.slot_minutes)
        if not slots:
            problems.append(_problem(["slots"], f"no {p.slot_minutes}-minute slot fits in '{p.slots}'",
                                     code="conf_no_slot", params={"minutes": p.slot_minutes, "slots": p.slots}))
    except InputError as exc:
        problems.append(_input_problem(["slots"], exc))

    if demand_ids is None:
        demand_ids = _select_demands(conn, p, problems)
    demand_ids, merged = fold_merges(conn, demand_ids)
    alias = {m: primary for primary, members in merged.items() for m in members}
    rows = store.get_demands(conn, list(demand_ids) + list(alias))
    chosen = [i for i in demand_ids if i in rows]
    if not chosen and not problems:
        problems.append(_problem(["demand_ids"], "no demands selected", code="conf_no_demands"))
    selected = set(chosen)
    enterprises = {rows[i]["enterprise"] or i for i in (*chosen, *alias)}
    known_partners = _partner_ids(conn, {x.partner_id for x in (*p.pins, *p.exclusions, *p.contracts)}
                                  | {a.id for a in p.availability if a.side == "partner"})
    for field, pairs in (("pins", p.pins), ("exclusions", p.exclusions)):
        for n, pair in enumerate(pairs):
            if alias.get(pair.demand_id, pair.demand_id) not in selected:
                known = pair.demand_id in rows or store.get_demand(conn, pair.demand_id) is not None
                why = "is not among the selected demands" if known else "does not exist"
                problems.append(_problem([field, n, "demand_id"], f"demand '{pair.demand_id}' {why}", "unknown_id",
                                         code="conf_not_selected" if known else "conf_unknown_demand",
                                         params={"id": pair.demand_id}))
            if pair.partner_id not in known_partners:
                problems.append(_problem([field, n, "partner_id"], f"partner '{pair.partner_id}' does not exist",
                                         "unknown_id", code="conf_unknown_partner", params={"id": pair.partner_id}))
    for n, c in enumerate(p.contracts):
        if c.partner_id not in known_partners:
            problems.append(_problem(["contracts", n, "partner_id"], f"partner '{c.partner_id}' does not exist",
                                     "unknown_id", code="conf_unknown_partner", params={"id": c.partner_id}))
    ent_windows: dict[str, list] = {}
    partner_windows: dict[str, list] = {}
    for n, a in enumerate(p.availability):
        if a.side == "partner" and a.id not in known_partners:
            problems.append(_problem(["availability", n, "id"], f"partner '{a.id}' does not exist", "unknown_id",
                                     code="conf_unknown_partner", params={"id": a.id}))
        if a.side == "enterprise" and a.id not in enterprises:
            problems.append(_problem(["availability", n, "id"],
                                     f"no selected demand comes from the enterprise '{a.id}'", "unknown_id",
                                     code="conf_unknown_enterprise", params={"name": a.id}))
        try:
            windows = parse_windows(a.windows)
        except InputError as exc:
            problems.append(_input_problem(["availability", n, "windows"], exc))
            continue
        (ent_windows if a.side == "enterprise" else partner_windows).setdefault(a.id, []).extend(windows)
    rules: list = []
    group_rules: list = []
    if p.contracts:
        rules.append(PairListRule(frozenset((c.enterprise, c.partner_id) for c in p.contracts)))
    quotas: dict[str, int] = {}
    for did, n in p.quotas.items():  # a merged demand's quota counts for its group (the largest wins)
        target = alias.get(did, did)
        quotas[target] = max(n, quotas.get(target, 0))
    for n, spec in enumerate(p.exclusion_rules):
        try:
            rule = parse_rule(spec)
        except InputError as exc:
            problems.append(_input_problem(["exclusion_rules", n], exc))
            continue
        (rules if isinstance(rule, SameValueRule) else group_rules).append(rule)
    for did in p.quotas:
        if alias.get(did, did) not in selected:
            known = store.get_demand(conn, did) is not None
            problems.append(_problem(["quotas", did], f"demand '{did}' "
                                     + ("is not among the selected demands" if known else "does not exist"),
                                     "unknown_id", code="conf_not_selected" if known else "conf_unknown_demand",
                                     params={"id": did}))
    constraints = None
    try:
        constraints = AssignmentConstraints(
            capacity=p.capacity, min_per_demand=p.min_per_demand, max_per_demand=p.max_per_demand,
            min_score=default_floor() if p.min_score is None else p.min_score,
            exclusions=frozenset((alias.get(x.demand_id, x.demand_id), x.partner_id) for x in p.exclusions),
            exclusion_rules=tuple(JointRule(r) for r in rules) if merged else tuple(rules),
            pins=tuple(dict.fromkeys((alias.get(x.demand_id, x.demand_id), x.partner_id) for x in p.pins)),
            quotas={k: v for k, v in quotas.items() if k in selected}, partner_min=p.partner_min,
            group_rules=tuple(group_rules), fair=p.fair)
    except InputError as exc:
        problems.append(_input_problem([exc.field or "constraints"], exc))
    if problems:
        message = f"{len(problems)} problem(s) in the conference parameters: " + "; ".join(
            f"{'.'.join(str(x) for x in d['loc'][1:])}: {d['message']}" for d in problems[:5])
        if all(d["code"] in STATE_PROBLEMS for d in problems):  # the request is fine; the records are not there
            raise Conflict(message, details=problems, code="unknown_records")
        raise Invalid(message, details=problems)
    assert constraints is not None
    return Plan(chosen, constraints, slots, ent_windows, partner_windows,
                {k: v for k, v in merged.items() if k in selected})


def fold_merges(conn: Connection, ids: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The demands of a conference with staff merges applied: every merged demand is replaced
    by its group's surviving (primary) demand, in the first position any member had, so a group
    is matched and scheduled once. Returns the ids and, per surviving demand in them, the other
    members that still exist. A merge whose primary was deleted is ignored (its members stand
    alone again)."""
    from service.jobs.landscape import load_links

    links, _ = load_links(conn)
    groups = {m.primary_id: [x for x in m.member_ids if x != m.primary_id] for m in links.merges.values()}
    if not groups:
        return list(dict.fromkeys(ids)), {}
    exists = store.get_demands(conn, sorted(set(groups) | {x for ms in groups.values() for x in ms}))
    groups = {k: [x for x in v if x in exists] for k, v in groups.items() if k in exists}
    alias = {m: primary for primary, members in groups.items() for m in members}
    folded = list(dict.fromkeys(alias.get(i, i) for i in ids))
    return folded, {i: groups[i] for i in folded if groups.get(i)}


def _select_demands(conn: Connection, p: ConferenceJobCreate, problems: list[dict]) -> list[str]:
    if p.demand_ids is not None:
        ids = list(dict.fromkeys(p.demand_ids))
        found = store.get_demands(conn, ids)
        for n, did in enumerate(p.demand_ids):
            if did not in found:
                problems.append(_problem(["demand_ids", n], f"demand '{did}' does not exist", "unknown_id",
                                         code="conf_unknown_demand", params={"id": did}))
        return ids
    stmt = select(demands.c.id).order_by(demands.c.id)
    if p.industry:
        stmt = stmt.where(demands.c.industry.in_(p.industry))
    if not p.include_unpublished:
        stmt = stmt.where(demands.c.published.is_(True))
    return [r[0] for r in conn.execute(stmt)]


def _partner_ids(conn: Connection, ids: set[str]) -> set[str]:
    return set(store.get_partners(conn, sorted(ids))) if ids else set()


# -- rows ----------------------------------------------------------------------------------------
def get_job(conn: Connection, job_id: str) -> dict | None:
    row = conn.execute(select(conference_jobs).where(conference_jobs.c.id == job_id)).first()
    return dict(row._mapping) if row else None


def list_jobs(conn: Connection, *, limit: int, offset: int, status: str | None = None) -> tuple[list[dict], int]:
    where = [conference_jobs.c.status == status] if status else []
    total = conn.execute(select(func.count()).select_from(conference_jobs).where(*where)).scalar_one()
    rows = conn.execute(select(conference_jobs).where(*where)
                        .order_by(conference_jobs.c.created_at.desc(), conference_jobs.c.id.desc())
                        .limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows], int(total)


# -- the runner ------------------------------------------------------------------------------------
POLL_SECONDS = 2.0  # how often an idle runner looks for jobs queued by other processes
STALE_AFTER = dt.timedelta(minutes=10)  # a job on another host with no progress this long is dead
_LIVE_RUNNERS: set[str] = set()  # runners of this process (several apps in one process: the tests)


def _worker_alive(worker: str, updated_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether the process `worker` ("host:pid:runner") may still be running its job."""
    pid_text = (worker or "").partition(":")[2].partition(":")[0]
    if not worker or not pid_text.isdigit():
        return False  # claimed by a release before workers were recorded: its process is gone
    alive = local_process_alive(worker, _LIVE_RUNNERS)
    if alive is None:  # another host: judged by the job's heartbeat
        return updated_at is not None and now - updated_at < STALE_AFTER
    return alive


class JobStopped(Exception):
    """Raised inside a job when the service stops; the job becomes "interrupted"."""


class ConferenceJobs:
    """The job queue and its one worker thread (see the module docstring)."""

    def __init__(self, db: Engine, live: LiveIndex, folder: str | Path, *, max_k: int = 100) -> None:
        self.db, self.live, self.folder, self.max_k = db, live, Path(folder), max_k
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # submit/resume: check-and-queue is atomic
        self.impressions = None  # service.storage.impressions.ImpressionLog: ranked lists are logged
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- lifecycle
    def recover(self) -> int:
        """Mark jobs running in a process that died as interrupted (resumable from their
        checkpoint); jobs of live processes are left alone, and queued jobs stay queued for any
        process to run. Called at start and, by the runner, every few seconds, so a worker's
        death is noticed by its siblings."""
        now = utcnow()
        with self.db.begin() as conn:
            rows = conn.execute(select(conference_jobs.c.id, conference_jobs.c.status, conference_jobs.c.worker,
                                       conference_jobs.c.updated_at)
                                .where(conference_jobs.c.status.in_(("queued", "running")))).all()
            dead = [r.id for r in rows if r.status == "running" and not _worker_alive(r.worker, r.updated_at, now)]
            n = 0
            if dead:
                n = conn.execute(update(conference_jobs).where(conference_jobs.c.id.in_(dead),
                                                               conference_jobs.c.status.in_(("queued", "running")))
                                 .values(status="interrupted", updated_at=now,
                                         error="the service stopped before the job finished; resume it")).rowcount
        if n:
            log.warning("conference jobs interrupted by a stopped process", extra={"jobs": n})
        return int(n or 0)

    def start(self) -> None:
        _LIVE_RUNNERS.add(self.worker_id)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="techmatch-conference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the worker: a running job ends after its current chunk as "interrupted"."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        _LIVE_RUNNERS.discard(self.worker_id)

    def job_dir(self, job_id: str) -> Path:
        return self.folder / job_id

    # -- requests
    def submit(self, params: ConferenceJobCreate, *, created_by: str) -> dict:
        """Validate `params` (422 with every problem), store the job as queued, queue it."""
        with self.db.connect() as conn:
            p = plan(conn, params, max_k=self.max_k)
        now = utcnow()
        job_id = store.ordered_id("CJ")  # newest first, even within one second
        row = {"id": job_id, "status": "queued", "stage": "", "progress_done": 0,
               "progress_total": len(p.demand_ids), "params": params.model_dump(mode="json"),
               "demand_ids": p.demand_ids, "summary": {}, "error": "", "runs": 0, "created_by": created_by,
               "created_at": now, "updated_at": now}
        with self._lock:
            with self.db.begin() as conn:
                conn.execute(insert(conference_jobs).values(**row))
            self._queue.put(job_id)
        return self.get(job_id)

    def resume(self, job_id: str) -> dict:
        """Queue an interrupted or failed job again; demands in its checkpoint are not ranked again."""
        with self._lock:
            with self.db.begin() as conn:
                row = get_job(conn, job_id)
                if row is None:
                    raise NotFound(f"no conference job '{job_id}'")
                if row["status"] not in RESUMABLE:
                    raise Conflict(f"job '{job_id}' is {row['status']}; only failed or interrupted jobs resume")
                conn.execute(update(conference_jobs).where(conference_jobs.c.id == job_id)
                             .values(status="queued", stage="", error="", updated_at=utcnow()))
            self._queue.put(job_id)
        return self.get(job_id)

    def get(self, job_id: str) -> dict:
        with self.db.connect() as conn:
            row = get_job(conn, job_id)
        if row is None:
            raise NotFound(f"no conference job '{job_id}'")
        return row

    # -- files
    def files(self, row: dict) -> list[tuple[str, Path]]:
        """(name, path) of a finished job's output files that exist."""
        if row["status"] != "done":
            return []
        base = self.job_dir(row["id"])
        out = []
        for name in (row["summary"] or {}).get("files", []):
            path = base / name
            if path.is_file():
                out.append((name, path))
        return out

    def file(self, row: dict, name: str) -> Path:
        """The path of output file `name` of a finished job. Only names the job listed are
        served, and only inside its folder: anything else (`..`, absolute paths) is 404."""
        if row["status"] != "done":
            raise Conflict(f"job '{row['id']}' is {row['status']}; its files are served once it is done")
        base = self.job_dir(row["id"]).resolve()
        for listed, path in self.files(row):
            if listed == name:
                resolved = path.resolve()
                if resolved.is_relative_to(base):
                    return resolved
        raise NotFound(f"job '{row['id']}' has no file '{name}'")

    # -- the worker
    def _work(self) -> None:
        """Run jobs queued here at once; every few seconds also look in the database for jobs
        queued by another process (or left by a dead one): each job is claimed by one process."""
        last_look = 0.0
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                job_id = ""
            if job_id is None or self._stop.is_set():
                break
            try:
                if job_id:
                    self._run(job_id)
                elif time.monotonic() - last_look >= POLL_SECONDS:
                    last_look = time.monotonic()
                    self.recover()
                    for queued in self._queued_ids():
                        if self._stop.is_set():
                            break
                        self._run(queued)
            except Exception:  # never let one job take the worker down
                log.exception("conference job crashed", extra={"job": job_id})

    def _queued_ids(self) -> list[str]:
        with self.db.connect() as conn:
            return list(conn.execute(select(conference_jobs.c.id).where(conference_jobs.c.status == "queued")
                                     .order_by(conference_jobs.c.created_at, conference_jobs.c.id)).scalars())

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise JobStopped

    def _set(self, job_id: str, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(update(conference_jobs).where(conference_jobs.c.id == job_id)
                         .values(**values, updated_at=utcnow()))

    def _run(self, job_id: str) -> None:
        row = self.get(job_id)
        if row["status"] != "queued":  # resumed twice, recovered, or claimed by another process
            return
        with self.db.begin() as conn:  # claim it: of several processes, exactly one succeeds
            claimed = conn.execute(update(conference_jobs).where(conference_jobs.c.id == job_id,
                                                                 conference_jobs.c.status == "queued")
                                   .values(status="running", stage="ranking", started_at=utcnow(), finished_at=None,
                                           runs=int(row["runs"] or 0) + 1, worker=self.worker_id,
                                           updated_at=utcnow())).rowcount
        if claimed != 1:
            return
        log.info("conference job started", extra={"job": job_id, "demands": len(row["demand_ids"])})
        try:
            summary = self._pipeline(row)
        except JobStopped:
            self._set(job_id, status="interrupted", error="the service stopped during the job; resume it")
            log.warning("conference job interrupted", extra={"job": job_id})
        except InfeasibleError as exc:
            conflicts = [{"demand_id": c.demand_id, "partner_id": c.partner_id, "constraint": c.constraint,
                          "detail": c.detail} for c in exc.conflicts]
            self._set(job_id, status="failed", finished_at=utcnow(), error=str(exc),
                      summary={"conflicts": conflicts,
                               "suggestions": [_suggestion(x) for x in exc.suggestions],
                               "explain": [f"pin ({c['demand_id']}, {c['partner_id']}) breaks {c['constraint']}: "
                                           f"{c['detail']}" for c in conflicts]
                               + [x.en for x in exc.suggestions]})
        except (MatcherError, ApiError) as exc:
            self._set(job_id, status="failed", finished_at=utcnow(), error=str(exc))
        except Exception as exc:
            log.exception("conference job failed", extra={"job": job_id})
            self._set(job_id, status="failed", finished_at=utcnow(), error=f"internal error: {type(exc).__name__}")
        else:
            self._set(job_id, status="done", stage="", finished_at=utcnow(), summary=summary,
                      objective=summary["objective"], greedy_objective=summary["greedy_objective"],
                      gap=summary["gap"], error="")
            log.info("conference job done", extra={"job": job_id, "meetings": summary["meetings"]})

    def _pipeline(self, row: dict) -> dict[str, Any]:
        from matcher.conference.assign import assign
        from matcher.conference.outputs import write_outputs
        from matcher.conference.run import candidate_table, rank_batch
        from matcher.conference.schedule import schedule_meetings
        from matcher.conference.summary import LANGS, plain_summary

        job_id = row["id"]
        params = ConferenceJobCreate.model_validate(row["params"], strict=False)  # stored, validated
        with self.db.connect() as conn:
            p = plan(conn, params, max_k=max(self.max_k, params.k), demand_ids=row["demand_ids"])
            dem_rows = store.get_demands(conn, p.demand_ids + [m for ms in p.merged.values() for m in ms])
            part = partner_records(conn)
        dems: list[Demand] = [joint_demand(store.demand_record(dem_rows[i]),
                                           [store.demand_record(dem_rows[m]) for m in p.merged.get(i, ())])
                              for i in p.demand_ids]
        missing = [i for i in row["demand_ids"] if i not in dem_rows]
        folder = self.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        while not self.live.wait_ready(timeout=0.5):
            self._check_stop()
            if self.live.error:
                break
        start: dict[str, int] = {}

        def rank_fn(chunk: list[Demand]):
            self._check_stop()
            with self.live.read() as engine:
                ranked = engine.match_partners_batch(chunk, k=params.k)
                version, described, rev = self.live.ranker_version, self.live.describe_engine(), self.live.revision
            if self.impressions is not None:
                from service.storage.impressions import Shown

                for demand_id, matches in ranked.items():
                    self.impressions.record(
                        source="conference", who=row.get("created_by", ""), demand_id=demand_id, text=None,
                        shown=[Shown(m.rank, m.partner_id, m.score, m.components) for m in matches],
                        engine=described, model_version=version, revision=rev, k=params.k)
            return ranked

        def progress(done: int, total: int) -> None:
            start.setdefault("done", done)
            self._set(job_id, progress_done=done, progress_total=total)
            self._check_stop()

        ranked = rank_batch(rank_fn, dems, params.k, checkpoint=folder / CHECKPOINT_NAME, progress=progress,
                            chunk_size=params.chunk_size)
        self._check_stop()
        self._set(job_id, stage="assigning")
        result = assign(candidate_table(ranked), p.constraints, demands=dems, partners=part, method=params.method,
                        alternates=params.alternates)
        self._check_stop()
        self._set(job_id, stage="scheduling")
        schedule = schedule_meetings(
            [(a.demand_id, a.partner_id) for a in result.pairs], p.slots, params.tables,
            enterprise_of={d.id: d.enterprise or d.id for d in dems}, enterprise_windows=p.enterprise_windows,
            attendees=attendees(dems),
            partner_windows=p.partner_windows, time_limit=params.schedule_seconds)
        self._check_stop()
        self._set(job_id, stage="writing")
        written = write_outputs(folder, result, schedule, dems, part, ranked, title=params.title or DEFAULT_TITLE,
                                pdf=params.pdf)
        files = sorted({_rel(path, folder) for path in written}, key=lambda n: ("/" in n, n))
        return {
            "demands": len(dems), "missing_demands": missing, "ranked_from_checkpoint": start.get("done", 0),
            "meetings": len(result.pairs), "objective": result.objective,
            "greedy_objective": result.greedy_objective, "gap": result.gap, "gap_pct": result.gap_pct,
            "method": result.method, "min_slots_filled": result.min_slots_filled,
            "min_slots_required": result.min_slots_required,
            "greedy_min_slots_filled": result.greedy_min_slots_filled,
            "shortfalls": dict(Counter(s.reason for s in result.shortfalls)),
            "binding_partners": [b.partner_id for b in result.binding_partners],
            "explain": result.explain(),
            "plain": {lang: plain_summary(result, schedule, dems, part, lang=lang) for lang in LANGS},
            "scheduled": len(schedule.meetings), "unscheduled": dict(Counter(u.reason for u in schedule.unplaced)),
            "schedule_method": schedule.method, "schedule_optimal": schedule.optimal,
            "slots": len(schedule.slots), "tables": schedule.tables, "partner_blocks": schedule.total_blocks,
            "schedule_bound": schedule.bound,
            "partner_min_filled": result.partner_min_filled, "partner_min_required": result.partner_min_required,
            "wishes_met": result.wishes_met, "wishes_wanted": result.wishes_wanted,
            "fair_threshold": result.fair_threshold, "worst_best": _finite(result.worst_best),
            "greedy_worst_best": _finite(result.greedy_worst_best),
            "suggestions": [_suggestion(x) for x in result.suggestions],
            "merged": {d.id: {"demands": merged_ids(d), "enterprises": enterprises_of(d)}
                       for d in dems if merged_ids(d)},
            "files": files,
        }


def _finite(x: float | None) -> float | None:
    """JSON has no infinities: a worst-off demand with no meeting at all is reported as null."""
    return x if x is not None and math.isfinite(x) else None


def _suggestion(x: Any) -> dict[str, Any]:
    return {"kind": x.kind, "target": x.target, "current": x.current, "proposed": x.proposed,
            "en": x.en, "zh": x.zh, "ru": x.ru}


def _rel(path: Path, folder: Path) -> str:
    return os.path.relpath(path, folder).replace(os.sep, "/")


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def partner_records(conn: Connection) -> list[Partner]:
    return [store.partner_record(dict(r._mapping)) for r in conn.execute(select(partners).order_by(partners.c.id))]
