"""Database schema and connection (SQLAlchemy Core). SQLite by default, PostgreSQL by URL.

Only portable SQL: generic column types, parameterised statements, no dialect-specific
statements except the SQLite connection pragmas (WAL, foreign keys, busy timeout).
The `meta` table holds a data revision, bumped by every write, that the derived index is
stamped with (see `service.jobs.live`).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import Connection

from service.settings import sqlite_path

SCHEMA_VERSION = 1

metadata = MetaData()

partners = Table(
    "partners", metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("type", String(32), nullable=False, default=""),
    Column("region", String(200), nullable=False, default=""),
    Column("country", String(64), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

capabilities = Table(
    "capabilities", metadata,
    Column("id", String(128), primary_key=True),
    Column("partner_id", String(128), ForeignKey("partners.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("title", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("kind", String(100), nullable=False, default=""),
    Column("industries", JSON, nullable=False, default=list),
    Column("language", String(16), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# One row per (capability, industry tag): lets lists filter by industry with plain SQL.
capability_industries = Table(
    "capability_industries", metadata,
    Column("capability_id", String(128), ForeignKey("capabilities.id", ondelete="CASCADE"),
           primary_key=True),
    Column("industry", String(200), primary_key=True),
    Index("ix_capability_industries_industry", "industry"),
)

demands = Table(
    "demands", metadata,
    Column("id", String(128), primary_key=True),
    Column("title", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("industry", String(200), nullable=False, default="", index=True),
    Column("region", String(200), nullable=False, default="", index=True),
    Column("enterprise", String(500), nullable=False, default=""),
    Column("contact", String(500), nullable=False, default=""),
    Column("confidential", Boolean, nullable=False, default=False),
    Column("date", String(32), nullable=False, default=""),
    Column("language", String(16), nullable=False, default=""),
    Column("extra", JSON, nullable=False, default=dict),
    # The enterprise account that owns the demand (an enterprise token's binding).
    Column("owner", String(500), nullable=False, default="", index=True),
    # Unpublished demands (e.g. submitted by an enterprise, not yet reviewed) are hidden
    # from institutes.
    Column("published", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("role", String(16), nullable=False),
    Column("partner_id", String(128), ForeignKey("partners.id", ondelete="CASCADE"), nullable=True),
    Column("enterprise", String(500), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=True),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("demand_id", String(128), ForeignKey("demands.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("partner_id", String(128), ForeignKey("partners.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),  # free text
    Column("who", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    # The pipeline of a pair (issue 16): a reason code for declines, the contract amount of an
    # agreement (yuan), and where the change came from (page, api, bulk, conference, import).
    Column("reason_code", String(32), nullable=False, default=""),
    Column("amount", Float, nullable=True),
    Column("source", String(16), nullable=False, default=""),
)

# Every match list served (page, API, conference run): who asked, when, for which demand, with
# which engine and ranker; one `impressions` row per partner shown. Pruned by age
# (`Settings.impression_retention_days`). Demands and partners are not foreign keys: the log
# outlives edits and deletions of the records it mentions.
impression_lists = Table(
    "impression_lists", metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex, made by the writer so rows batch
    Column("served_at", DateTime, nullable=False, index=True),
    Column("source", String(16), nullable=False),  # page, api, text, conference
    Column("who", String(200), nullable=False, default=""),
    Column("demand_id", String(128), nullable=True, index=True),  # None for a free-text query
    Column("query_hash", String(64), nullable=False, default=""),  # sha256 of a free-text query
    Column("engine", String(200), nullable=False, default=""),  # encoder and fusion
    Column("model_version", String(32), nullable=False, default=""),  # ranker version or "default"
    Column("revision", Integer, nullable=False, default=0),
    Column("k", Integer, nullable=False, default=0),
)

impressions = Table(
    "impressions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", String(32), ForeignKey("impression_lists.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("rank", Integer, nullable=False),
    Column("partner_id", String(128), nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("components", JSON, nullable=False, default=dict),
)

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

# Conference batch runs started from the service (see `conference_jobs.py`); the files
# live in a folder per job under `Settings.jobs_dir()`.
conference_jobs = Table(
    "conference_jobs", metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),  # queued running done failed interrupted
    Column("stage", String(32), nullable=False, default=""),
    Column("progress_done", Integer, nullable=False, default=0),
    Column("progress_total", Integer, nullable=False, default=0),
    Column("params", JSON, nullable=False, default=dict),
    Column("demand_ids", JSON, nullable=False, default=list),
    Column("summary", JSON, nullable=False, default=dict),
    Column("objective", Float, nullable=True),
    Column("greedy_objective", Float, nullable=True),
    Column("gap", Float, nullable=True),
    Column("error", Text, nullable=False, default=""),
    Column("runs", Integer, nullable=False, default=0),
    Column("created_by", String(200), nullable=False, default=""),
    # the process running the job ("host:pid:runner"): a job whose process died is recovered
    # by any other process (`service.jobs.conference`)
    Column("worker", String(200), nullable=False, default="", server_default=""),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=False),
)

# Staff decisions on near-duplicate demands: one row holding `matcher.landscape.build.DemandLinks`
# as JSON (merges keep copies of the original records; the `demands` rows are never changed).
demand_links = Table(
    "demand_links", metadata,
    Column("key", String(32), primary_key=True),
    Column("data", Text, nullable=False),
    Column("version", Integer, nullable=False, default=1),  # optimistic concurrency between processes
    Column("updated_by", String(200), nullable=False, default=""),
    Column("updated_at", DateTime, nullable=False),
)

# Every change to a demand made through the service (created, edited, published, returned to the
# enterprise, resubmitted, merged): who, when, what changed ({field: [old, new]}) and a note. No
# foreign key: the history outlives a deleted demand.
demand_changes = Table(
    "demand_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("demand_id", String(128), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("who", String(200), nullable=False, default=""),
    Column("role", String(16), nullable=False, default=""),
    Column("at", DateTime, nullable=False),
    Column("changes", JSON, nullable=False, default=dict),
    Column("note", Text, nullable=False, default=""),
)


# The demand landscape, built once per data revision by whichever process claims the row first
# (`service.jobs.landscape`); every process serves the stored result. `worker` ("host:pid:id")
# holds the build while `lease_until` lies ahead (renewed while it runs); a row whose builder
# died or whose lease ran out is taken over. `data`: the finished landscape and its report
# (zlib-compressed pickle written by this service); `builds`: how many builds were started.
landscape_builds = Table(
    "landscape_builds", metadata,
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),  # building done failed
    Column("worker", String(200), nullable=False, default=""),
    Column("lease_until", DateTime, nullable=False),
    Column("builds", Integer, nullable=False, default=1),
    Column("built_revision", Integer, nullable=True),  # the index revision the build saw (>= revision)
    Column("data", LargeBinary, nullable=True),
    Column("error", Text, nullable=False, default=""),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)


# What every write changed, by revision: each process replays the rows past its own index's
# revision, so any number of processes on one database answer from an index holding every
# committed write (`service.jobs.live`). `kind`: demand, capability or partner, with a leading
# "-" for a removal; a write that changed no record leaves one row with kind "". Old rows are
# pruned; a process further behind than the log reaches rebuilds its index.
change_log = Table(
    "change_log", metadata,
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("record_id", String(128), nullable=False, default=""),
)


def utcnow() -> dt.datetime:
    """Naive UTC now: stored the same way by SQLite and PostgreSQL (timestamp without zone)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL mode, foreign keys and a busy timeout."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    return engine


def init_db(engine: Engine) -> None:
    """Bring an empty database to the schema (migrations, `service.storage.migrate`), check an
    existing one is current (`SchemaError` otherwise), and add the meta rows (idempotent)."""
    from service.storage.migrate import prepare

    prepare(engine)
    with engine.begin() as conn:
        have = {row.key for row in conn.execute(select(meta.c.key))}
        # database_id: who this database is, stamped on saved indexes (two databases at the same
        # revision are still different databases)
        for key, value in (("revision", 0), ("schema_version", SCHEMA_VERSION),
                           ("database_id", secrets.randbelow(2**31 - 2) + 1)):
            if key not in have:
                conn.execute(meta.insert().values(key=key, value=value))


_REVISION = select(meta.c.value).where(meta.c.key == "revision")  # built once: every request reads it


def revision(conn: Connection) -> int:
    """The current data revision."""
    return int(conn.execute(_REVISION).scalar_one())


def database_id(conn: Connection) -> int:
    """This database's random identity (0 before `init_db` ran on it)."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == "database_id")).scalar()
    return int(value or 0)


def bump_revision(conn: Connection) -> int:
    """Increment the data revision inside the caller's transaction; returns the new value."""
    conn.execute(update(meta).where(meta.c.key == "revision").values(value=meta.c.value + 1))
    return revision(conn)
